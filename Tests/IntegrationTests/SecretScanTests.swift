import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Secret scan")
struct SecretScanTests {
    @Test(
        "every flow with debug logging: no secret livesim issued or knows appears in stdout, stderr, errors or the database"
    )
    func noSecretAnywhere() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 5 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            var outputs: [String] = []
            func run(_ arguments: [String], stdin: String? = nil) throws -> CommandResult {
                let result = try daemon.tokenctl(arguments, stdin: stdin)
                outputs.append(result.stderr)
                return result
            }
            // Enrollment by every method, failures included.
            _ = try run(
                ["login", "alice@example.com", "--password-stdin", "--store-password", "--ticket-method", "rst"],
                stdin: "correct horse\n")
            _ = try run(["login", "bob@example.com", "--password-stdin"], stdin: "pw-bob\n")
            _ = try run(["login", "carol@example.com", "--password-stdin"], stdin: "pw-carol\n")
            _ = try run(
                ["login", "alice@example.com", "--name", "wrong", "--password-stdin"], stdin: "not the password\n")
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"pw-erin"}"#)
            let location = try await browserSignIn(sim, login: "erin@example.com", password: "pw-erin")
            _ = try run(["login", "--browser", "erin@example.com"], stdin: location + "\n")
            _ = try run(["import", "fred@example.com", "--refresh-token-stdin"], stdin: "M.C5not-a-real-token$$\n")
            // Every credential, read through every client, through a few refresh cycles.
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(12) {
                for endpoint in [
                    "token?scope=skype", "token?scope=ssl", "skypetoken", "uic", "ticket", "web-ticket",
                    "ath?method=ssl-compact-ticket-uic",
                ] {
                    _ = try await daemon.get("/v1/accounts/alice@example.com/\(endpoint)")
                    let other = try await daemon.get("/v1/accounts/erin@example.com/\(endpoint)")
                    outputs.append(other.status == 200 ? "" : other.body)
                }
                _ = try run(["status"])
                try await Task.sleep(for: .milliseconds(500))
            }
            // Failures too: a revoked grant, a changed password, a provider outage.
            _ = try await sim.control(.POST, "accounts/erin@example.com/revoke")
            _ = try await sim.control(.PATCH, "accounts/alice@example.com", json: #"{"password":"changed"}"#)
            try await sim.addFault(#"{"endpoint":"token","kind":"malformed","count":3}"#)
            try await Task.sleep(for: .seconds(6))
            outputs.append(try await daemon.get("/v1/accounts/erin@example.com/token?scope=skype").body)
            outputs.append(try await daemon.get("/v1/accounts/alice@example.com/ticket?min_valid=4").body)
            _ = try run(["logout", "erin@example.com"])
            #expect(daemon.stop() == 0)

            var haystack = Data(daemon.log.utf8)
            for output in outputs { haystack += Data(output.utf8) }
            let state = daemon.directory.file("state")
            for file in try FileManager.default.contentsOfDirectory(atPath: state)
            where file.hasPrefix("tokenbroker.sqlite") {
                haystack += try Data(contentsOf: URL(fileURLWithPath: state + "/" + file))
            }
            #expect(daemon.log.contains("debug"))
            #expect(daemon.log.contains("token refreshed"))
            let secrets = try await sim.secrets().filter { $0.count >= 6 }
            #expect(secrets.count > 50)
            let leaked = secrets.filter { haystack.range(of: Data($0.utf8)) != nil }
            #expect(leaked.isEmpty, "\(leaked.count) of \(secrets.count) secrets found in logs, output or the database")
        }
    }
}
