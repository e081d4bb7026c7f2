import Foundation
import TestSupport
import Testing

@Suite("Reloads")
struct ReloadTests {
    @Test("a reload that changes keys a running daemon cannot apply logs a warning naming each of them")
    func restartKeysWarned() async throws {
        try await withBroker(server: ["request_timeout = 5", "max_connections = 1000"]) { _, daemon in
            let text = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
            try writeConfiguration(
                text.replacingOccurrences(of: "request_timeout = 5", with: "request_timeout = 7")
                    .replacingOccurrences(of: "max_connections = 1000", with: "max_connections = 2000"),
                to: daemon.configPath)
            kill(try #require(daemon.pid), SIGHUP)
            for _ in 0..<200 where !daemon.log.contains("configuration reloaded") {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(daemon.log.contains("configuration reloaded"), "\(daemon.log.suffix(2000))")
            #expect(
                daemon.log.contains(
                    "these settings changed but apply only after a restart: server.request_timeout, server.max_connections"
                ),
                "\(daemon.log.suffix(2000))")
            #expect(try await daemon.get("/v1/health").status == 200)
        }
    }

    @Test("a reload changes the log level of the running daemon: debug lines stop at info and come back at debug")
    func levelFollowsReload() async throws {
        try await withBroker { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            func served() -> Int { daemon.log.components(separatedBy: "credential served").count - 1 }
            func reload(_ level: String, count: Int) async throws {
                let text = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
                let current = text.contains("level = \"debug\"") ? "debug" : "info"
                try writeConfiguration(
                    text.replacingOccurrences(of: "level = \"\(current)\"", with: "level = \"\(level)\""),
                    to: daemon.configPath)
                kill(try #require(daemon.pid), SIGHUP)
                let reloads = { daemon.log.components(separatedBy: "configuration reloaded").count - 1 }
                for _ in 0..<200 where reloads() < count { try await Task.sleep(for: .milliseconds(50)) }
                #expect(reloads() == count, "\(daemon.log.suffix(2000))")
            }
            #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
            #expect(served() >= 1)
            try await reload("info", count: 1)
            let atInfo = served()
            for _ in 0..<3 { #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200) }
            #expect(served() == atInfo)
            try await reload("debug", count: 2)
            #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
            for _ in 0..<100 where served() == atInfo { try await Task.sleep(for: .milliseconds(20)) }
            #expect(served() > atInfo)
        }
    }
}
