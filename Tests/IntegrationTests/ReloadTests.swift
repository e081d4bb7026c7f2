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
}
