import Foundation
import LiveSim
import TestSupport
import Testing

@Suite("Process hygiene and keys in the running daemon")
struct HygieneTests {
    @Test("the daemon runs with core dumps off and umask 077, and rekey goes on while it serves")
    func hardenedAndRekey() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let pid = try #require(daemon.pid)
            let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
            let core = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
            #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"])
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            #expect(status.contains("Umask:\t0077"))
            let before = try await daemon.token("alice@example.com", scope: "ssl")
            #expect(before.status == 200)

            let newKey = (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let rekey = try await daemon.tokenctl(["rekey"], stdin: newKey + "\n")
            #expect(rekey.status == 0, "\(rekey.stderr)")
            #expect(rekey.stdout.contains("now holds the new key"))
            #expect(
                try await daemon.token("alice@example.com", scope: "ssl").json["access_token"] as? String
                    == before.json["access_token"] as? String)
            let keyFile = daemon.directory.file("state/key")
            #expect(
                (try Data(contentsOf: URL(fileURLWithPath: keyFile))).map { String(format: "%02x", $0) }.joined()
                    == newKey)
            // After a restart the daemon opens the store with the new key and serves the same token.
            #expect(await daemon.stop() == 0)
            try await daemon.start()
            #expect(
                try await daemon.token("alice@example.com", scope: "ssl").json["access_token"] as? String
                    == before.json["access_token"] as? String)
        }
    }

    @Test("the daemon refuses a configuration or key file that others can write or read")
    func refusesLooseFiles() async throws {
        try await withLiveSim { sim in
            let daemon = try DaemonProcess(sim: sim)
            do {
                try await checkRefusals(daemon)
            } catch {
                await daemon.shutdown()
                throw error
            }
            await daemon.shutdown()
        }
    }

    func checkRefusals(_ daemon: DaemonProcess) async throws {
        do {
            chmod(daemon.configPath, 0o666)
            let loose = try await runCommand(Products.path("tokenbrokerd"), ["--config", daemon.configPath])
            #expect(loose.status != 0)
            #expect(loose.stderr.contains("writable by others"))
            chmod(daemon.configPath, 0o600)
            try await daemon.start()
            #expect(await daemon.stop() == 0)
            chmod(daemon.directory.file("state/key"), 0o644)
            let key = try await runCommand(Products.path("tokenbrokerd"), ["--config", daemon.configPath])
            #expect(key.status != 0)
            #expect(key.stderr.contains("key file"))
        }
    }
}
