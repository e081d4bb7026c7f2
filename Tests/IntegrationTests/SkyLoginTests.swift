import BrokerCore
import Foundation
import LiveSim
import TestSupport
import Testing

/// SkyLogin end to end: livesim's login server and notification server, the daemon with the
/// `sim` realm naming that login server and trusting its keys.
@Suite("SkyLogin")
struct SkyLoginTests {
    static let alice = "alice@example.com"
    static let echo = "echo123"

    func code(_ response: TestResponse) -> String? { (response.json["error"] as? [String: Any])?["code"] as? String }

    /// livesim with a login server and a Skype name, and a daemon whose realm uses it.
    static func withSkyLogin(
        sim configure: @escaping (inout LiveSimConfiguration) -> Void = { _ in }, refresh: [String] = [],
        _ body: (LiveSimFixture, DaemonProcess) async throws -> Void
    ) async throws {
        try await withLiveSim({ config in
            config.nsHost = "127.0.0.1"
            config.skyloginHost = "127.0.0.1"
            config.accounts.append(AccountSpec(skypeName: "Echo123", password: "pw-echo"))
            configure(&config)
        }) { sim in
            let directory = try TemporaryDirectory()
            let keys = directory.file("skylogin-keys.json")
            try sim.writeSkyLoginKeys(to: keys)
            let daemon = try DaemonProcess(
                sim: sim, refresh: refresh,
                extra: """
                    skylogin_servers = ["127.0.0.1:\(sim.server.skyloginPort!)"]
                    skylogin_keys = "\(keys)"
                    """)
            do {
                try await daemon.start()
                try await body(sim, daemon)
            } catch {
                print("daemon log:\n" + daemon.log.suffix(4000))
                await daemon.shutdown()
                throw error
            }
            await daemon.shutdown()
            withExtendedLifetime(directory) {}
        }
    }

    static func nsLogins(_ sim: LiveSimFixture, _ method: String) async throws -> (success: Int, failure: Int) {
        let counts = (try await sim.counters()["ns_logins"] as? [String: [String: Int]])?[method] ?? [:]
        return (counts["success"] ?? 0, counts["failure"] ?? 0)
    }

    @Test(
        "a Skype name logs in with skype-uic for three CNT nonces; a Microsoft account with ssl-compact-ticket-skylogin"
    )
    func logins() async throws {
        try await Self.withSkyLogin { sim, daemon in
            let enroll = try await daemon.tokenctl(
                ["login", "--skype", "Echo123", "--password-stdin"], stdin: "pw-echo\n")
            #expect(enroll.status == 0, "\(enroll.stderr)")
            for round in 1...3 {
                let lines = try await msnp24Login(sim) { nonce in
                    let ath = try await daemon.get("/v1/accounts/\(Self.echo)/ath?method=skype-uic&nonce=\(nonce)")
                    #expect(ath.status == 200, "\(ath.body)")
                    return ath.json["wire"] as? String ?? ""
                }
                #expect(lines.last?.hasPrefix("ATH 0 CON") == true, "round \(round): \(lines)")
            }
            #expect(try await Self.nsLogins(sim, "skype-uic").success == 3)
            // The UIC answers: signed over a nonce, or the credentials themselves.
            let uic = try await daemon.get("/v1/accounts/\(Self.echo)/uic?nonce=5d679ff8-5bf4-fdff-ab76-d17c91413d78")
            #expect(uic.status == 200, "\(uic.body)")
            #expect(uic.json["skype_name"] as? String == "echo123")
            #expect((uic.json["uic"] as? String ?? "").hasPrefix("AAABBAAAAA"))
            let validated = try await sim.validate(uic.json["uic"] as? String ?? "")
            #expect(validated["valid"] as? Bool == true, "\(validated)")
            let credentials = try await daemon.get("/v1/accounts/\(Self.echo)/uic?method=skylogin")
            #expect((credentials.json["uic"] as? String ?? "").hasPrefix("AAAAA"))
            #expect(code(try await daemon.get("/v1/accounts/\(Self.echo)/uic")) == "bad_request")
            #expect(
                code(try await daemon.get("/v1/accounts/\(Self.echo)/token?scope=skype")) == "credential_unavailable")
            let long = String(repeating: "n", count: 48)
            #expect(code(try await daemon.get("/v1/accounts/\(Self.echo)/uic?nonce=\(long)")) == "bad_request")
            #expect(code(try await daemon.get("/v1/accounts/\(Self.echo)/uic?nonce=\(long.dropLast())")) == nil)

            // A Microsoft account: SkyLogin with its login.skype.com token.
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            let lines = try await msnp24Login(sim) { _ in
                let ath = try await daemon.get("/v1/accounts/\(Self.alice)/ath?method=ssl-compact-ticket-skylogin")
                #expect(ath.status == 200, "\(ath.body)")
                #expect((ath.json["body"] as? String ?? "").contains("<alias>live:alice</alias>"))
                return ath.json["wire"] as? String ?? ""
            }
            #expect(lines.last?.hasPrefix("ATH 0 CON") == true, "\(lines)")
            #expect(try await Self.nsLogins(sim, "ssl-compact-ticket-skylogin").success == 1)
            let aliceUIC = try await daemon.get("/v1/accounts/\(Self.alice)/uic?method=skylogin")
            #expect(aliceUIC.json["skype_name"] as? String == "live:alice")
        }
    }

    @Test("livesim refuses a UIC signed over another nonce")
    func otherNonce() async throws {
        try await Self.withSkyLogin { sim, daemon in
            let enroll = try await daemon.tokenctl(
                ["login", "--skype", Self.echo, "--password-stdin"], stdin: "pw-echo\n")
            #expect(enroll.status == 0, "\(enroll.stderr)")
            let lines = try await msnp24Login(sim) { _ in
                let ath = try await daemon.get(
                    "/v1/accounts/\(Self.echo)/ath?method=skype-uic&nonce=00000000-0000-0000-0000-000000000000")
                return ath.json["wire"] as? String ?? ""
            }
            #expect(lines.last?.hasPrefix("911") == true, "\(lines)")
            #expect(try await Self.nsLogins(sim, "skype-uic").failure == 1)
        }
    }

    @Test(
        "a wrong password: exit 4; expired or untrusted credentials are refused at receipt; a refusal later: needs_reauth"
    )
    func refusals() async throws {
        try await Self.withSkyLogin { sim, daemon in
            let wrong = try await daemon.tokenctl(
                ["login", "--skype", Self.echo, "--password-stdin"], stdin: "nope\n")
            #expect(wrong.status == 4, "\(wrong.stderr)")
            #expect(wrong.stderr.contains("4201"), "\(wrong.stderr)")
            for fault in ["expired", "untrusted"] {
                try await sim.addFault(#"{"endpoint":"skylogin","kind":"\#(fault)","count":1}"#)
                let refused = try await daemon.tokenctl(
                    ["login", "--skype", Self.echo, "--password-stdin"], stdin: "pw-echo\n")
                #expect(refused.status != 0, "\(fault): \(refused.stdout)")
                #expect(
                    refused.stderr.contains(fault == "expired" ? "expired" : "untrusted key index"),
                    "\(fault): \(refused.stderr)")
            }
            let good = try await daemon.tokenctl(
                ["login", "--skype", Self.echo, "--password-stdin"], stdin: "pw-echo\n")
            #expect(good.status == 0, "\(good.stderr)")
        }
    }

    @Test("a renewal refused later (answer 4201): needs_reauth with the code in the reason, and no retries")
    func refusedLater() async throws {
        try await Self.withSkyLogin(sim: { $0.lifetimes[.skylogin] = 60 }, refresh: ["safety_margin = 1"]) {
            sim, daemon in
            let good = try await daemon.tokenctl(
                ["login", "--skype", Self.echo, "--password-stdin"], stdin: "pw-echo\n")
            #expect(good.status == 0, "\(good.stderr)")
            try await sim.addFault(#"{"endpoint":"skylogin","kind":"refuse","code":4201,"count":100}"#)
            var state = ""
            let deadline = ContinuousClock.now + .seconds(100)
            while ContinuousClock.now < deadline, state != "needs_reauth" {
                try await Task.sleep(for: .seconds(1))
                state = try await daemon.get("/v1/accounts/\(Self.echo)").json["state"] as? String ?? ""
            }
            #expect(state == "needs_reauth")
            let reason = try await daemon.get("/v1/accounts/\(Self.echo)").json["state_reason"] as? String ?? ""
            #expect(reason.contains("4201"), "\(reason)")
            let requests = (try await sim.counters()["requests"] as? [String: Int])?["skylogin"] ?? 0
            try await Task.sleep(for: .seconds(5))
            #expect((try await sim.counters()["requests"] as? [String: Int])?["skylogin"] == requests)
            #expect(code(try await daemon.get("/v1/accounts/\(Self.echo)/uic?nonce=abc")) == "needs_reauth")
        }
    }

    @Test("a login server that hangs, resets or answers garbage: a clear error; other accounts' cached reads stay fast")
    func faults() async throws {
        try await Self.withSkyLogin { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            // The account's own SkyLogin sign-in comes first, so that it does not take the faults.
            let own = try await daemon.get("/v1/accounts/\(Self.alice)/uic?method=skylogin")
            #expect(own.status == 200, "\(own.body)")
            for (fault, words) in [
                ("reset", "SkyLogin server"), ("garbage", "SkyLogin server"), ("hang", "SkyLogin server"),
            ] {
                try await sim.addFault(#"{"endpoint":"skylogin","kind":"\#(fault)","count":1}"#)
                let enrolling = Task {
                    try await daemon.tokenctl(
                        ["login", "--skype", Self.echo, "--password-stdin"], stdin: "pw-echo\n")
                }
                // Meanwhile another account's cached reads are answered at once.
                var slowest = Duration.zero
                for _ in 0..<20 {
                    let start = ContinuousClock.now
                    let token = try await daemon.get("/v1/accounts/\(Self.alice)/token?scope=skype")
                    #expect(token.status == 200)
                    slowest = max(slowest, ContinuousClock.now - start)
                    try await Task.sleep(for: .milliseconds(50))
                }
                // Well under the 20 s the hang lasts, with room for a loaded machine.
                #expect(slowest < .milliseconds(1500), "\(fault): a cached read took \(slowest)")
                let result = try await enrolling.value
                #expect(result.status == 5, "fault \(fault): \(result.status) \(result.stderr) \(result.stdout)")
                #expect(result.stderr.contains(words), "\(fault): \(result.stderr)")
            }
        }
    }

    @Test(
        "credentials living 2 minutes, over 5 minutes: every UIC verifies in livesim when used; renewed before expiry")
    func keptFresh() async throws {
        try await Self.withSkyLogin(sim: { $0.lifetimes[.skylogin] = 120 }, refresh: ["safety_margin = 5"]) {
            sim, daemon in
            let enroll = try await daemon.tokenctl(
                ["login", "--skype", Self.echo, "--password-stdin"], stdin: "pw-echo\n")
            #expect(enroll.status == 0, "\(enroll.stderr)")
            let start = ContinuousClock.now
            var checked = 0
            var expiries = Set<String>()
            while ContinuousClock.now - start < .seconds(300) {
                let nonce = UUID().uuidString.lowercased()
                let uic = try await daemon.get("/v1/accounts/\(Self.echo)/uic?nonce=\(nonce)")
                try #require(uic.status == 200, "\(uic.body)")
                #expect((uic.json["expires_in"] as? Int ?? 0) >= 5)
                expiries.insert(uic.json["expires_at"] as? String ?? "")
                let validation = try await sim.validate(uic.json["uic"] as? String ?? "")
                #expect(validation["valid"] as? Bool == true, "\(validation)")
                checked += 1
                if checked % 10 == 0 {
                    let lines = try await msnp24Login(sim) { cntNonce in
                        let ath = try await daemon.get(
                            "/v1/accounts/\(Self.echo)/ath?method=skype-uic&nonce=\(cntNonce)")
                        return ath.json["wire"] as? String ?? ""
                    }
                    #expect(lines.last?.hasPrefix("ATH 0 CON") == true, "\(lines)")
                }
                try await Task.sleep(for: .seconds(2))
            }
            #expect(checked > 100)
            // 300 s of 120 s credentials (livesim rounds expiry up to a whole minute) renewed at 75%:
            // at least two renewals, each seen.
            #expect(expiries.count >= 3, "\(expiries.sorted())")
            #expect(try await Self.nsLogins(sim, "skype-uic").failure == 0)
        }
    }
}
