import Foundation
import TestSupport
import Testing

@Suite("Reloads")
struct ReloadTests {
    /// One daemon for both checks: each daemon a test starts (with its livesim) adds load that the
    /// timed tests running beside it feel.
    @Test(
        "a reload that changes keys a running daemon cannot apply logs a warning naming each of them; a reload changes the log level: each read's debug line starts at debug and stops at info"
    )
    func restartKeysWarned() async throws {
        // Started at info: the server looks at the level when it starts and when a reload changes
        // it, so the reads' lines appear only if the reload reaches it.
        try await withBroker(server: ["request_timeout = 5", "max_connections = 1000"], logLevel: "info") {
            sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            func served() -> Int { daemon.log.components(separatedBy: "credential served").count - 1 }
            func reload(count: Int, _ change: (String) -> String) async throws {
                let text = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
                try writeConfiguration(change(text), to: daemon.configPath)
                kill(try #require(daemon.pid), SIGHUP)
                let reloads = { daemon.log.components(separatedBy: "configuration reloaded").count - 1 }
                for _ in 0..<200 where reloads() < count { try await Task.sleep(for: .milliseconds(50)) }
                #expect(reloads() == count, "\(daemon.log.suffix(2000))")
            }
            for _ in 0..<2 { #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200) }
            #expect(served() == 0)
            try await reload(count: 1) {
                $0.replacingOccurrences(of: "request_timeout = 5", with: "request_timeout = 7")
                    .replacingOccurrences(of: "max_connections = 1000", with: "max_connections = 2000")
                    .replacingOccurrences(of: "level = \"info\"", with: "level = \"debug\"")
            }
            #expect(
                daemon.log.contains(
                    "these settings changed but apply only after a restart: server.request_timeout, server.max_connections"
                ),
                "\(daemon.log.suffix(2000))")
            #expect(try await daemon.get("/v1/health").status == 200)
            for _ in 0..<2 { #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200) }
            for _ in 0..<100 where served() < 2 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(served() >= 2)
            try await reload(count: 2) { $0.replacingOccurrences(of: "level = \"debug\"", with: "level = \"info\"") }
            let atInfo = served()
            for _ in 0..<3 { #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200) }
            #expect(served() == atInfo)
        }
    }
}
