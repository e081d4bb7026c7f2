import BrokerCore
import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Every MSNP24 credential, fresh against livesim")
struct CredentialTests {
    @Test(
        "lifetimes of 8 s over 60 s: every skypetoken, UIC, ticket and cookie served is valid; dependents follow their parents"
    )
    func keepsEverythingFresh() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 8 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            let rst = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin", "--store-password", "--ticket-method", "rst"],
                stdin: "correct horse\n")
            #expect(rst.status == 0, "\(rst.stderr)")
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"pw-erin"}"#)
            let oauth = try await daemon.tokenctl(
                ["login", "erin@example.com", "--password-stdin"], stdin: "pw-erin\n")
            #expect(oauth.status == 0, "\(oauth.stderr)")
            let before = try await sim.counters()
            let start = ContinuousClock.now
            var seen = Set<String>()
            var checked = 0
            // Sign-ins so far (silent or by password): each starts a new grant family and revokes
            // the old one, the tokens the daemon served from it included.
            func signIns() async throws -> Int {
                let requests = try await sim.counters()["requests"] as? [String: Int] ?? [:]
                return (requests["authorize"] ?? 0) + (requests["post"] ?? 0)
            }
            var signInsBeforeRead = 0
            var readStarted = Date()
            var revokedAfterServing = 0
            /// Every invalid credential is accounted for exactly: the only excuse is that its
            /// grant family was replaced by the daemon's own sign-in after the read that served it
            /// began. A credential whose family was already revoked when it was asked for fails.
            func check(_ value: String, kind: String, servedFrom started: Date) async throws {
                // Every read is checked, a value served before included: a cached credential
                // served again after its family was revoked is as wrong as a new one.
                seen.insert(value)
                let validation = try await sim.validate(value)
                #expect(validation["kind"] as? String == kind)
                guard validation["valid"] as? Bool != true else {
                    checked += 1
                    return
                }
                let family = validation["family"] as? Int
                let revokedAt = (validation["family_revoked_at"] as? Double).map(Date.init(timeIntervalSince1970:))
                let replacedBySignIn = validation["family_revoked"] as? String == "replaced by a new sign-in"
                // Replaced by the daemon's own sign-in after the read began; or by one that livesim
                // had answered just before, whose new tokens were still on their way back to the
                // daemon (until they arrive and are committed, the old ones are the daemon's best).
                let inFlight: TimeInterval = 2
                let duringRead = revokedAt.map { $0 >= started } ?? false
                if let family, let revokedAt, replacedBySignIn,
                    validation["reason"] as? String == "grant family revoked: replaced by a new sign-in",
                    revokedAt >= started.addingTimeInterval(-inFlight),
                    duringRead ? try await signIns() != signInsBeforeRead : signInsBeforeRead > 0
                {
                    // Valid when served; the daemon's next sign-in replaced its family since.
                    print(
                        "credentials: \(kind) of family \(family) revoked \(String(format: "%.3f", revokedAt.timeIntervalSince(started))) s after its read began"
                    )
                    revokedAfterServing += 1
                    return
                }
                Issue.record(
                    "\(kind) served invalid: \(validation); its read began at \(started.timeIntervalSince1970)")
            }
            /// A read, remembering when it began and how many sign-ins there had been.
            func read(_ path: String) async throws -> TestResponse {
                signInsBeforeRead = try await signIns()
                readStarted = Date()
                return try await daemon.get(path)
            }
            while ContinuousClock.now - start < .seconds(60) {
                for account in ["alice@example.com", "erin@example.com"] {
                    let skypetoken = try await read("/v1/accounts/\(account)/skypetoken")
                    try #require(skypetoken.status == 200, "\(skypetoken.body)")
                    #expect((skypetoken.json["expires_in"] as? Int ?? 0) >= 1)
                    try await check(
                        skypetoken.json["skypetoken"] as? String ?? "", kind: "skypetoken", servedFrom: readStarted)
                    let uic = try await read("/v1/accounts/\(account)/uic")
                    try #require(uic.status == 200, "\(uic.body)")
                    try await check(uic.json["uic"] as? String ?? "", kind: "uic", servedFrom: readStarted)
                    let web = try await read("/v1/accounts/\(account)/web-ticket")
                    try #require(web.status == 200, "\(web.body)")
                    for cookie in (web.json["cookies"] as? String ?? "").split(separator: ";") {
                        let value = cookie.split(separator: "=", maxSplits: 1).last.map(String.init) ?? ""
                        try await check(value, kind: "cookie", servedFrom: readStarted)
                    }
                }
                let ticket = try await read("/v1/accounts/alice@example.com/ticket")
                try #require(ticket.status == 200, "\(ticket.body)")
                #expect(ticket.json["method"] as? String == "rst")
                try await check(ticket.json["ticket"] as? String ?? "", kind: "ticket", servedFrom: readStarted)
                let oauthTicket = try await read("/v1/accounts/erin@example.com/ticket")
                #expect(oauthTicket.json["method"] as? String == "oauth")
                let value = oauthTicket.json["ticket"] as? String ?? ""
                #expect(value.hasPrefix("t=EwA"))
                try await check(String(value.dropFirst(2)), kind: "access_token", servedFrom: readStarted)
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(checked > 50)
            print(
                "credentials: \(seen.count) distinct, \(checked) valid reads, \(revokedAfterServing) revoked by a later sign-in after serving"
            )
            let after = try await sim.counters()
            func delta(_ key: String, _ sub: String) -> Int {
                ((after[key] as? [String: Int])?[sub] ?? 0) - ((before[key] as? [String: Int])?[sub] ?? 0)
            }
            // Each skype.com token refresh is followed by a new skypetoken.
            let skypeRefreshes = delta("requests_by_scope", "service::skype.com::MBI_SSL")
            #expect(
                delta("requests", "skypetoken") >= skypeRefreshes - 2,
                "\(delta("requests", "skypetoken")) skypetokens for \(skypeRefreshes) skype refreshes")
            #expect(delta("requests", "rst") >= 8)
            #expect(delta("requests", "user_initialization") >= 8)
            #expect((after["refresh_token_reuse"] as? Int) == 0)
        }
    }

    @Test("ATH payloads, tickets and challenge answers over the socket and tokenctl")
    func athAndChallenge() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin", "--store-password", "--ticket-method", "rst"],
                stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            let web = try await daemon.get("/v1/accounts/alice@example.com/ath?method=web-compact-ticket&trid=2")
            #expect(web.json["length"] as? Int == 37)
            #expect(web.json["body"] as? String == "<user><web-compact-ticket /></user>")
            #expect(web.json["wire"] as? String == "ATH 2 CON\\USER 37\r\n\r\n<user><web-compact-ticket /></user>")
            let ticket = try await daemon.get("/v1/accounts/alice@example.com/ticket")
            let raw = try #require(ticket.json["ticket"] as? String)
            #expect(raw.hasPrefix("t=") && raw.hasSuffix("&p="))
            let ath = try await daemon.get("/v1/accounts/alice@example.com/ath?method=ssl-compact-ticket-uic")
            let body = try #require(ath.json["body"] as? String)
            #expect(
                body.contains(
                    "<ssl-compact-ticket>\(raw.replacingOccurrences(of: "&", with: "&amp;"))</ssl-compact-ticket>"))
            #expect(body.hasSuffix("<ssl-site-name>chatservice.live.com</ssl-site-name></user>"))
            #expect(ath.json["length"] as? Int == body.utf8.count + 2)
            #expect(
                (ath.json["wire"] as? String)?.hasPrefix("ATH {trid} CON\\USER \(body.utf8.count + 2)\r\n\r\n<user>")
                    == true)
            let cli = try await daemon.tokenctl([
                "ath", "alice@example.com", "--method", "ssl-compact-ticket", "--trid", "7",
            ])
            #expect(cli.stdout.hasPrefix("ATH 7 CON\\USER "))

            let challenge = try await daemon.request(.POST, "/v1/challenge", body: #"{"nonce":"22210219642164014968"}"#)
            #expect(challenge.json["response"] as? String == "85ecb0db8f32113df79ce0892b9a102c")
            #expect(challenge.json["product_id"] as? String == "PROD0090YUAUV{2B")
            let local = try await runCommand(
                Products.path("tokenctl"), ["--socket", "/nonexistent", "challenge", "22210219642164014968"])
            #expect(local.stdout == "85ecb0db8f32113df79ce0892b9a102c\n")
            let bad = try await daemon.get("/v1/accounts/alice@example.com/ath?method=skylogin")
            #expect(bad.errorCode == "bad_request")
        }
    }

    @Test("RST: LifeTime sets the expiry, a redirect fault is followed, a wrong password is a clear error")
    func rst() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            try await sim.setSettings(#"{"lifetimes":{"ticket":500}}"#)
            let login = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin", "--store-password", "--ticket-method", "rst"],
                stdin: "correct horse\n")
            #expect(login.status == 0, "\(login.stderr)")
            let first = try await daemon.get("/v1/accounts/alice@example.com/ticket")
            let expiresIn = first.json["expires_in"] as? Int ?? 0
            #expect((490...500).contains(expiresIn))

            try await sim.addFault(#"{"endpoint":"rst","kind":"soap_fault","soap_fault":"redirect","count":1}"#)
            try await Task.sleep(for: .milliseconds(1_100))
            let redirected = try await daemon.get("/v1/accounts/alice@example.com/ticket?min_valid=499")
            #expect(redirected.status == 200, "\(redirected.body)")
            #expect(redirected.json["ticket"] as? String != first.json["ticket"] as? String)
            let counters = try await sim.counters()
            #expect((counters["requests"] as? [String: Int])?["rst2"] == 1)

            #expect(
                try await sim.control(.PATCH, "accounts/alice@example.com", json: #"{"password":"changed"}"#).status
                    == 200)
            try await Task.sleep(for: .milliseconds(1_100))
            let refused = try await daemon.get("/v1/accounts/alice@example.com/ticket?min_valid=499")
            #expect(refused.errorCode == "needs_reauth")
            #expect(refused.errorMessage?.contains("RST.srf refused the stored password") == true)
        }
    }

    @Test("a dependency that fails makes its dependents report needs_reauth, never stale values")
    func dependencyFailure() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let skypetoken = try await daemon.get("/v1/accounts/alice@example.com/skypetoken")
            #expect(skypetoken.status == 200)
            #expect(
                try await sim.control(
                    .POST, "accounts/alice@example.com/revoke", json: #"{"scope":"service::skype.com::MBI_SSL"}"#
                ).status == 200)
            try await Task.sleep(for: .milliseconds(1_100))
            let dependent = try await daemon.get("/v1/accounts/alice@example.com/skypetoken?min_valid=599")
            #expect(dependent.errorCode == "needs_reauth", "\(dependent.body)")
            #expect(dependent.errorMessage?.contains("revoked") == true)
            let again = try await daemon.get("/v1/accounts/alice@example.com/skypetoken")
            #expect(again.errorCode == "needs_reauth")
        }
    }

    @Test("credentials that need cookies or a password answer credential_unavailable with the fix")
    func unavailable() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            for endpoint in ["uic", "web-ticket", "ath?method=web-compact-ticket", "ath?method=ssl-compact-ticket-uic"]
            {
                let response = try await daemon.get("/v1/accounts/alice@example.com/\(endpoint)")
                #expect(response.errorCode == "credential_unavailable", "\(endpoint): \(response.body)")
                #expect(
                    ((response.json["error"] as? [String: Any])?["hint"] as? String)?.contains("tokenctl login") == true
                )
            }
            let ticket = try await daemon.get("/v1/accounts/alice@example.com/ticket")
            #expect(ticket.status == 200)
            #expect(ticket.json["method"] as? String == "oauth")
            let rstWithoutPassword = try await daemon.request(
                .POST, "/v1/accounts",
                body:
                    #"{"method":"password","login":"alice@example.com","password":"correct horse","ticket_method":"rst"}"#
            )
            #expect(rstWithoutPassword.errorCode == "bad_request")
        }
    }
}
