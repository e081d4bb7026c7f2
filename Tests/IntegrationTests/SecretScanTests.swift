import BrokerCore
import BrokerStore
import Foundation
import LiveProtocol
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Secret scan")
struct SecretScanTests {
    @Test(
        "every flow with debug logging: no secret livesim issued or knows appears in stdout, stderr, errors, the event stream or the database"
    )
    func noSecretAnywhere() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 5 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            // Every event of every flow below, as JSON and as text.
            let events = [try EventReader(daemon), try EventReader(daemon, json: false)]
            var outputs: [String] = []
            func run(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
                let result = try await daemon.tokenctl(arguments, stdin: stdin)
                outputs.append(result.stderr)
                return result
            }
            // Enrollment by every method, failures included.
            _ = try await run(
                ["login", "alice@example.com", "--password-stdin", "--store-password", "--ticket-method", "rst"],
                stdin: "correct horse\n")
            _ = try await run(["login", "bob@example.com", "--password-stdin"], stdin: "pw-bob\n")
            _ = try await run(["login", "carol@example.com", "--password-stdin"], stdin: "pw-carol\n")
            _ = try await run(
                ["login", "alice@example.com", "--name", "wrong", "--password-stdin"], stdin: "not the password\n")
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"pw-erin"}"#)
            let location = try await browserSignIn(sim, login: "erin@example.com", password: "pw-erin")
            _ = try await run(["login", "--browser", "erin@example.com"], stdin: location + "\n")
            _ = try await run(
                ["import", "fred@example.com", "--refresh-token-stdin"], stdin: "M.C5not-a-real-token$$\n")
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
                _ = try await run(["status"])
                try await Task.sleep(for: .milliseconds(500))
            }
            // Failures too: a revoked grant, a changed password, a provider outage.
            _ = try await sim.control(.POST, "accounts/erin@example.com/revoke")
            _ = try await sim.control(.PATCH, "accounts/alice@example.com", json: #"{"password":"changed"}"#)
            try await sim.addFault(#"{"endpoint":"token","kind":"malformed","count":3}"#)
            try await Task.sleep(for: .seconds(6))
            outputs.append(try await daemon.get("/v1/accounts/erin@example.com/token?scope=skype").body)
            outputs.append(try await daemon.get("/v1/accounts/alice@example.com/ticket?min_valid=4").body)
            _ = try await run(["logout", "erin@example.com"])
            #expect(await daemon.stop() == 0)
            for reader in events { #expect(try await reader.exitStatus() == 0, "\(reader.errors)") }
            #expect(
                events[0].text.contains(#""event":"needs_reauth""#) && events[0].text.contains(#""event":"refreshed""#))
            #expect(events[0].text.contains(#""event":"refresh_failed""#) && events[1].text.contains(" logged_out "))

            var haystack = Data(daemon.log.utf8)
            for output in outputs + events.map(\.text) { haystack += Data(output.utf8) }
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

    @Test(
        "revival realms: no password, ticket or BinarySecret in logs, errors or the database, and no BinarySecret in any answer"
    )
    func revivalFlows() async throws {
        try await withRevivalBroker(sim: { $0.tokenLifetime = 5 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            let alice = "alice@example.com"
            var outputs: [String] = []
            var answers: [String] = []
            func run(_ arguments: [String], stdin: String? = nil) async throws {
                let result = try await daemon.tokenctl(arguments, stdin: stdin)
                outputs.append(result.stderr)
                answers.append(result.stdout)
            }
            func get(_ path: String) async throws {
                let response = try await daemon.get(path)
                answers.append(response.body)
                // A credential served is meant to be seen; an error never holds one.
                if response.status != 200 { outputs.append(response.body) }
            }
            try await run(["login", alice, "--realm", "revival", "--password-stdin"], stdin: "not the password\n")
            try await run(["login", alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(12) {
                for path in [
                    "sso?nonce=\(String(repeating: "Zz", count: 32))&trid=4&guid=abc", "ticket",
                    "ticket?site=contacts.msn.com",
                    "ticket?site=storage.msn.com", "passport14?challenge=ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1",
                    "token?scope=skype", "sso?nonce=%01",
                ] {
                    try await get("/v1/accounts/\(alice)/\(path)")
                }
                let reply = try await ssoLogin(sim, daemon, account: alice, login: alice, version: 18)
                #expect(reply.prefix(3) == ["USR", "4", "OK"], "\(reply)")
                try await run(["status"])
                try await Task.sleep(for: .milliseconds(500))
            }
            // A password changed at the server: refused renewals and a refused Passport 1.4 login.
            _ = try await sim.control(.PATCH, "accounts/\(alice)", json: #"{"password":"changed"}"#)
            try await get("/v1/accounts/\(alice)/passport14?challenge=ct=2,rver=1")
            try await Task.sleep(for: .seconds(5))
            try await get("/v1/accounts/\(alice)/sso?nonce=abc")
            try await run(["status"])
            #expect(await daemon.stop() == 0)

            var haystack = Data(daemon.log.utf8)
            for output in outputs { haystack += Data(output.utf8) }
            let state = daemon.directory.file("state")
            for file in try FileManager.default.contentsOfDirectory(atPath: state)
            where file.hasPrefix("tokenbroker.sqlite") {
                haystack += try Data(contentsOf: URL(fileURLWithPath: state + "/" + file))
            }
            // livesim knows the current password; the earlier ones are the test's.
            let secrets = try await sim.secrets().filter { $0.count >= 6 } + ["correct horse", "not the password"]
            let binarySecrets = secrets.filter { !$0.hasPrefix("t=") && Data(base64Encoded: $0)?.count == 24 }
            #expect(secrets.contains("changed"))
            #expect(binarySecrets.count >= 4, "\(binarySecrets.count) BinarySecrets issued")
            let leaked = secrets.filter { haystack.range(of: Data($0.utf8)) != nil }
            #expect(leaked.isEmpty, "\(leaked.count) of \(secrets.count) secrets found in logs, errors or the database")
            let answered = Data(answers.joined(separator: "\n").utf8)
            #expect(answered.range(of: Data("HAAAAAEAAAADZgAA".utf8)) != nil, "no proof was served")
            let inAnswers = binarySecrets.filter { answered.range(of: Data($0.utf8)) != nil }
            #expect(inAnswers.isEmpty, "\(inAnswers.count) BinarySecrets found in socket answers")
        }
    }

    @Test(
        "SkyLogin: no password, login hash or client private key in logs, errors, answers or the database; the database holds them sealed"
    )
    func skyloginFlows() async throws {
        try await SkyLoginTests.withSkyLogin(sim: { $0.lifetimes[.skylogin] = 60 }, refresh: ["safety_margin = 1"]) {
            sim, daemon in
            var outputs: [String] = []
            var answers: [String] = []
            func run(_ arguments: [String], stdin: String? = nil) async throws {
                let result = try await daemon.tokenctl(arguments, stdin: stdin)
                outputs.append(result.stderr)
                answers.append(result.stdout)
            }
            func get(_ path: String) async throws {
                let response = try await daemon.get(path)
                answers.append(response.body)
                if response.status != 200 { outputs.append(response.body) }
            }
            try await run(["login", "--skype", "echo123", "--password-stdin"], stdin: "not pw-echo\n")
            try await run(["login", "--skype", "echo123", "--password-stdin"], stdin: "pw-echo\n")
            try await run(["login", "alice@example.com", "--password-stdin"], stdin: "correct horse\n")
            let start = ContinuousClock.now
            while ContinuousClock.now - start < .seconds(50) {
                for path in [
                    "echo123/uic?nonce=\(UUID())", "echo123/uic?method=skylogin",
                    "echo123/ath?method=skype-uic&nonce=n1",
                    "echo123/uic", "echo123/uic?nonce=\(String(repeating: "x", count: 48))", "echo123/token?scope=ssl",
                    "alice@example.com/uic?method=skylogin", "alice@example.com/ath?method=ssl-compact-ticket-skylogin",
                ] {
                    try await get("/v1/accounts/\(path)")
                }
                try await run(["status"])
                try await run(["uic", "echo123", "--nonce", "abc"])
                try await Task.sleep(for: .seconds(2))
            }
            // Failures too: the login server refusing and answering garbage.
            try await sim.addFault(#"{"endpoint":"skylogin","kind":"garbage","count":1}"#)
            try await run(["login", "--skype", "echo123", "--password-stdin"], stdin: "pw-echo\n")
            try await sim.addFault(#"{"endpoint":"skylogin","kind":"refuse","count":1}"#)
            try await run(["login", "--skype", "echo123", "--password-stdin"], stdin: "pw-echo\n")
            #expect(await daemon.stop() == 0)

            // The daemon's own secrets, read back from its store with its key.
            let state = URL(fileURLWithPath: daemon.directory.file("state"))
            let store = try CredentialStore.open(directory: state, keyFile: state.appendingPathComponent("key"))
            let echo = try store.credentials(for: AccountName(rawValue: "echo123")!)
            let alice = try store.credentials(for: AccountName(rawValue: "alice@example.com")!)
            var secrets = ["pw-echo", "not pw-echo", "correct horse"]
            for key in [echo.skyloginKey, alice.skyloginKey] {
                let serialized = try #require(key?.exposed)
                let bytes = try #require(Data(base64Encoded: serialized))
                #expect(bytes.count == 257)
                // The private exponent, as hex and as base64, besides the stored form.
                let d = bytes.suffix(128)
                secrets += [serialized, d.map { String(format: "%02x", $0) }.joined(), Data(d).base64EncodedString()]
            }
            let hash = try #require(echo.loginHash?.exposed)
            secrets += [hash, Data(SkyLoginHex.decode(hash) ?? []).base64EncodedString()]

            var haystack = Data(daemon.log.utf8)
            for output in outputs { haystack += Data(output.utf8) }
            for file in try FileManager.default.contentsOfDirectory(atPath: state.path)
            where file.hasPrefix("tokenbroker.sqlite") {
                haystack += try Data(contentsOf: state.appendingPathComponent(file))
            }
            haystack += Data(answers.joined(separator: "\n").utf8)
            let leaked = secrets.filter { haystack.range(of: Data($0.utf8)) != nil }
            #expect(leaked.isEmpty, "\(leaked.count) of \(secrets.count) SkyLogin secrets found")
            // What livesim knows (passwords, login hashes, the credentials it issued) stays out of
            // logs, errors and the database file; credentials are served, so answers may hold them.
            var unserved = Data(daemon.log.utf8)
            for output in outputs { unserved += Data(output.utf8) }
            for file in try FileManager.default.contentsOfDirectory(atPath: state.path)
            where file.hasPrefix("tokenbroker.sqlite") {
                unserved += try Data(contentsOf: state.appendingPathComponent(file))
            }
            let known = try await sim.secrets().filter { $0.count >= 6 }
            #expect(known.contains("pw-echo"))
            let found = known.filter { unserved.range(of: Data($0.utf8)) != nil }
            #expect(found.isEmpty, "\(found.count) of \(known.count) livesim secrets in logs, errors or the database")
        }
    }
}
