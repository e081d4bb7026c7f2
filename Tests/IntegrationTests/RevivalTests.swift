import BrokerCore
import Foundation
import LiveProtocol
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

/// Revival servers (Escargot and its kind): an `rst` realm signs in at RST.srf with the password,
/// keeps every site's ticket and its BinarySecret fresh, and answers `USR SSO S` proofs and
/// Passport 1.4 tickets, checked by livesim's notification server and its own proof verifier.
@Suite("Revival realms")
struct RevivalTests {
    static let alice = "alice@example.com"

    func code(_ response: TestResponse) -> String? { (response.json["error"] as? [String: Any])?["code"] as? String }

    static func requests(_ sim: LiveSimFixture, _ endpoint: String) async throws -> Int {
        (try await sim.counters()["requests"] as? [String: Int])?[endpoint] ?? 0
    }

    @Test("MSNP15 and MSNP18 SSO and MSNP12 Passport 1.4 logins end with USR OK; a wrong nonce or key gets 911")
    func logins() async throws {
        try await withRevivalBroker { sim, daemon in
            let realms = try await daemon.get("/v1/realms")
            #expect(realms.body.contains(#""sign_in":"rst""#) && realms.body.contains(#""sign_in":"oauth""#))
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            #expect(try await Self.requests(sim, "rst") == 1)

            for version in [15, 18] {
                let before = try await usrLogins(sim, "sso")
                let reply = try await ssoLogin(sim, daemon, account: Self.alice, login: Self.alice, version: version)
                #expect(reply == ["USR", "4", "OK", Self.alice, "1", "0"], "MSNP\(version): \(reply)")
                #expect(try await usrLogins(sim, "sso").success == before.success + 1)
            }
            let twnBefore = try await usrLogins(sim, "twn")
            let twn = try await twnLogin(sim, daemon, account: Self.alice, login: Self.alice, version: 12)
            #expect(twn.reply.prefix(4) == ["USR", "4", "OK", Self.alice], "\(twn.reply)")
            #expect(try await usrLogins(sim, "twn").success == twnBefore.success + 1)

            // A proof for another nonce.
            let other = try await ssoLogin(sim, daemon, account: Self.alice, login: Self.alice, version: 18) {
                _, _ in
                let answer = try await daemon.get(
                    "/v1/accounts/\(Self.alice)/sso?nonce=\(String(repeating: "A", count: 64))&trid=4&guid=\(UUID())")
                return answer.json["usr"] as? String ?? ""
            }
            #expect(other == ["911", "4"])
            // A proof keyed with Passport.NET/tb's BinarySecret, from the same RST.srf answer as the
            // ticket; the control with messengerclear.live.com's secret of that answer passes.
            for (keyedWith, expected) in [
                ("http://Passport.NET/tb", ["911", "4"]), ("messengerclear.live.com", ["USR", "4", "OK"]),
            ] {
                let reply = try await ssoLogin(sim, daemon, account: Self.alice, login: Self.alice, version: 18) {
                    nonce, _ in
                    let (ticket, secrets) = try await Self.ownRST(sim, login: Self.alice, password: "correct horse")
                    let secret = try #require(secrets[keyedWith])
                    let key = try #require(Data(base64Encoded: secret))
                    let proof = try MBIKeyOldProof.proof(
                        key: [UInt8](key), nonce: Array(nonce.utf8), iv: [1, 2, 3, 4, 5, 6, 7, 8])
                    return "USR 4 SSO S \(ticket) \(proof) {\(UUID())}"
                }
                #expect(Array(reply.prefix(expected.count)) == expected, "keyed with \(keyedWith): \(reply)")
            }

            // The other sites, by address; OAuth endpoints name the realm's sign-in kind.
            let contacts = try await daemon.get("/v1/accounts/\(Self.alice)/ticket?site=contacts.msn.com")
            #expect(contacts.status == 200, "\(contacts.body)")
            let contactsTicket = contacts.json["ticket"] as? String ?? ""
            #expect(contactsTicket.hasPrefix("t=") && contactsTicket.hasSuffix("&p="))
            #expect(try await sim.validate(contactsTicket)["valid"] as? Bool == true)
            let clear = try await daemon.get("/v1/accounts/\(Self.alice)/ticket")
            #expect(clear.json["site"] as? String == "messengerclear.live.com")
            let token = try await daemon.get("/v1/accounts/\(Self.alice)/token?scope=skype")
            #expect(token.status == 409)
            #expect(code(token) == "credential_unavailable")
            let message = (token.json["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("signs in with rst"), "\(message)")
            let ath = try await daemon.get("/v1/accounts/\(Self.alice)/ath?method=ssl-compact-ticket")
            #expect(code(ath) == "credential_unavailable", "\(ath.body)")
            let upper = try await daemon.get("/v1/accounts/\(Self.alice)/ticket?site=Contacts.MSN.com")
            #expect(upper.json["ticket"] as? String == contactsTicket)
            let injected = try await daemon.get("/v1/accounts/\(Self.alice)/passport14?challenge=ct=1,pwd=x")
            #expect(code(injected) == "bad_request", "\(injected.body)")
            let badNonce = try await daemon.get("/v1/accounts/\(Self.alice)/sso?nonce=%0Abad")
            #expect(code(badNonce) == "bad_request")
            let badPolicy = try await daemon.get("/v1/accounts/\(Self.alice)/sso?nonce=abc&policy=NOPE")
            #expect(code(badPolicy) == "bad_request")
            let usr = try await daemon.get("/v1/accounts/\(Self.alice)/sso?nonce=abc&guid=%7Babc%7D")
            #expect((usr.json["usr"] as? String ?? "").hasPrefix("USR {trid} SSO S t="))
            #expect((usr.json["usr"] as? String ?? "").hasSuffix(" {abc}"))
            let status = try await daemon.tokenctl(["status"])
            #expect(status.stdout.contains("messengerclear.live.com") && status.stdout.contains("storage.msn.com"))
            // Still one RST.srf call: everything came from the enrollment's answer.
            #expect(try await Self.requests(sim, "rst") == 1 + 2)
        }
    }

    /// RST.srf asked directly, as a client would: the messengerclear.live.com ticket and every
    /// BinarySecret, by site, from one answer.
    static func ownRST(_ sim: LiveSimFixture, login: String, password: String) async throws -> (
        ticket: String, secrets: [String: String]
    ) {
        let envelope = RSTRequest.render(
            username: login, password: Secret(password), sites: RSTSite.messengerDefaults)
        let response = try await sim.request(
            .POST, "/RST.srf", headers: [("Content-Type", "text/xml")], body: envelope)
        var secrets: [String: String] = [:]
        var ticket = ""
        for part in response.body.components(separatedBy: "RequestSecurityTokenResponse>").dropFirst() {
            guard let address = Self.between(part, "Address>", "</"),
                let secret = Self.between(part, "BinarySecret>", "</")
            else { continue }
            secrets[address] = secret
            if address == "messengerclear.live.com", let value = Self.between(part, "Compact", "</") {
                ticket = String(value.drop { $0 != ">" }.dropFirst()).replacingOccurrences(of: "&amp;", with: "&")
            }
        }
        return (ticket, secrets)
    }

    static func between(_ text: String, _ start: String, _ end: String) -> String? {
        guard let a = text.range(of: start), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else {
            return nil
        }
        return String(text[a.upperBound..<b.lowerBound])
    }

    @Test("with Escargot's Compact numbering, enrollment and SSO still work")
    func escargotNumbering() async throws {
        try await withRevivalBroker { sim, daemon in
            try await sim.setSettings(#"{"rst_numbering":"escargot"}"#)
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            let reply = try await ssoLogin(sim, daemon, account: Self.alice, login: Self.alice, version: 18)
            #expect(reply.prefix(3) == ["USR", "4", "OK"], "\(reply)")
            let contacts = try await daemon.get("/v1/accounts/\(Self.alice)/ticket?site=contacts.msn.com")
            #expect(try await sim.validate(contacts.json["ticket"] as? String ?? "")["valid"] as? Bool == true)
        }
    }

    @Test("tickets living 8 s, over 60 s: every ticket served is valid and every proof is accepted")
    func keptFresh() async throws {
        try await withRevivalBroker(sim: { $0.tokenLifetime = 8 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            let rstBefore = try await Self.requests(sim, "rst")
            let start = ContinuousClock.now
            var logins = 0
            var tickets = Set<String>()
            while ContinuousClock.now - start < .seconds(60) {
                let reply = try await ssoLogin(sim, daemon, account: Self.alice, login: Self.alice, version: 18)
                #expect(reply.prefix(3) == ["USR", "4", "OK"], "\(reply)")
                logins += 1
                for site in ["messenger.msn.com", "storage.msn.com"] {
                    let served = try await daemon.get("/v1/accounts/\(Self.alice)/ticket?site=\(site)")
                    try #require(served.status == 200, "\(served.body)")
                    let value = served.json["ticket"] as? String ?? ""
                    if tickets.insert(value).inserted {
                        let validation = try await sim.validate(value)
                        #expect(validation["valid"] as? Bool == true, "\(site): \(validation)")
                    }
                }
                try await Task.sleep(for: .milliseconds(700))
            }
            #expect(logins > 40)
            #expect(try await usrLogins(sim, "sso").failure == 0)
            // About one RST.srf call per 6 s (75% of 8 s), every site renewed by each.
            let calls = try await Self.requests(sim, "rst") - rstBefore
            #expect((7...15).contains(calls), "\(calls) RST.srf calls in 60 s")
            #expect(tickets.count >= 14)
        }
    }

    @Test(
        "a wrong password at enrollment exits 4 with the server's text; a password changed later: needs_reauth, no retries"
    )
    func refusedPasswords() async throws {
        try await withRevivalBroker(sim: { $0.tokenLifetime = 8 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            let wrong = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "not the password\n")
            #expect(wrong.status == 4, "\(wrong.stdout) \(wrong.stderr)")
            #expect(wrong.stderr.contains("invalid_credentials") || wrong.stderr.contains("refused"))
            #expect(wrong.stderr.contains("FailedAuthentication"), "\(wrong.stderr)")
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            _ = try await sim.control(.PATCH, "accounts/\(Self.alice)", json: #"{"password":"changed"}"#)
            // The next renewal (at about 6 s) is refused.
            var state = ""
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, state != "needs_reauth" {
                try await Task.sleep(for: .milliseconds(500))
                state = try await daemon.get("/v1/accounts/\(Self.alice)").json["state"] as? String ?? ""
            }
            #expect(state == "needs_reauth")
            let reason = try await daemon.get("/v1/accounts/\(Self.alice)").json["state_reason"] as? String ?? ""
            #expect(reason.contains("FailedAuthentication"), "\(reason)")
            let calls = try await Self.requests(sim, "rst")
            try await Task.sleep(for: .seconds(10))
            #expect(try await Self.requests(sim, "rst") == calls, "RST.srf called again after needs_reauth")
            let sso = try await daemon.get("/v1/accounts/\(Self.alice)/sso?nonce=abc")
            #expect(code(sso) == "needs_reauth")
            let passport = try await daemon.get("/v1/accounts/\(Self.alice)/passport14?challenge=ct=1,rver=1")
            #expect(code(passport) == "needs_reauth")
        }
    }

    @Test("Passport 1.4 with a password changed since enrollment: needs_reauth")
    func passport14Refused() async throws {
        try await withRevivalBroker { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            _ = try await sim.control(.PATCH, "accounts/\(Self.alice)", json: #"{"password":"changed"}"#)
            let refused = try await daemon.get("/v1/accounts/\(Self.alice)/passport14?challenge=ct=1,rver=1,id=1")
            #expect(code(refused) == "needs_reauth", "\(refused.body)")
            #expect(try await daemon.get("/v1/accounts/\(Self.alice)").json["state"] as? String == "needs_reauth")
        }
    }

    @Test("tickets and BinarySecrets survive a restart: served and proven without a new RST.srf call")
    func survivesRestart() async throws {
        try await withRevivalBroker { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", Self.alice, "--realm", "revival", "--password-stdin"], stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            let calls = try await Self.requests(sim, "rst")
            #expect(await daemon.stop() == 0)
            try await daemon.start()
            let reply = try await ssoLogin(sim, daemon, account: Self.alice, login: Self.alice, version: 16)
            #expect(reply.prefix(3) == ["USR", "4", "OK"], "\(reply)")
            #expect(try await Self.requests(sim, "rst") == calls)
        }
    }
}
