import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

private let tb = "http://Passport.NET/tb"
private let messengerClear = "messengerclear.live.com"

private func token(_ tokens: [RSTReplyToken], _ address: String) throws -> RSTReplyToken {
    try #require(tokens.first { $0.address == address }, "no token for \(address)")
}

@Suite("RST.srf for revival clients: ids, per-site secrets, Escargot numbering, RST2.srf")
struct RevivalRSTTests {
    @Test("the WLM 2009 request: Compact<N> by RST id, tb's EncryptedData and two different BinarySecrets")
    func liveNumbering() async throws {
        try await withLiveSim { sim in
            let tokens = try await sim.rstTokens()
            #expect(tokens.map(\.address) == wlmSites.map(\.0))
            #expect(tokens.map(\.id) == ["BinaryDAToken0", "Compact1", "Compact2", "Compact3", "Compact4", "Compact5"])
            let compactType = "urn:passport:compact"
            #expect(tokens.map(\.tokenType) == ["urn:passport:legacy"] + Array(repeating: compactType, count: 5))
            let legacy = try token(tokens, tb)
            let clear = try token(tokens, messengerClear)
            let tbSecret = try #require(legacy.binarySecret)
            let clearSecret = try #require(clear.binarySecret)
            #expect(tbSecret != clearSecret)
            #expect(Data(base64Encoded: tbSecret)?.count == 24 && Data(base64Encoded: clearSecret)?.count == 24)
            #expect(tokens.filter { $0.binarySecret != nil }.map(\.address) == [tb, messengerClear])
            #expect(!legacy.value.hasPrefix("t=") && Data(base64Encoded: legacy.value) != nil)
            // Every compact ticket is t=...&p= and belongs to its own site.
            let compacts = tokens.dropFirst()
            #expect(compacts.allSatisfy { $0.value.hasPrefix("t=") && $0.value.hasSuffix("&p=") })
            #expect(Set(compacts.map(\.value)).count == compacts.count)
            for compact in compacts {
                let validation = try await sim.validate(compact.value)
                #expect(validation["kind"] as? String == "ticket" && validation["scope"] as? String == compact.address)
            }
            // The secrets export holds both BinarySecrets.
            let secrets = Set(try await sim.secrets())
            #expect(secrets.contains(tbSecret) && secrets.contains(clearSecret))

            // The response carries the captures' structure.
            let body = try await sim.request(
                .POST, "/RST.srf", body: rstRequest(sites: wlmSites)
            ).body
            #expect(body.contains(#"<wsse:KeyIdentifier ValueType="urn:passport"></wsse:KeyIdentifier>"#))
            #expect(body.contains(##"<wsse:Reference URI="#BinaryDAToken0"></wsse:Reference>"##))
            #expect(body.contains(##"<wsse:Reference URI="#Compact1"></wsse:Reference>"##))
            #expect(body.contains("<ds:KeyName>http://Passport.NET/STS</ds:KeyName>"))
            #expect(body.contains("<wst:LifeTime>") && !body.contains("<wst:Lifetime>"))
        }
    }

    @Test("rst_numbering escargot shifts the ids as the captures show; no site's Compact id is its RST id")
    func escargotNumbering() async throws {
        try await withLiveSim { sim in
            try await sim.setSettings(#"{"rst_numbering":"escargot"}"#)
            let settings = try await sim.control(.GET, "settings").json
            #expect(settings["rst_numbering"] as? String == "escargot")
            // The captures' request: tb, messengerclear, contacts, chatservice.
            let captured = [
                (tb, ""), (messengerClear, "MBI_KEY_OLD"), ("contacts.msn.com", "MBI"),
                ("chatservice.live.com", "MBI_SSL"),
            ]
            let tokens = try await sim.rstTokens(sites: captured)
            #expect(tokens.map(\.id) == ["BinaryDAToken0", "Compact2", "Compact3", "Compact4"])
            let wlm = try await sim.rstTokens()
            #expect(wlm.map(\.id) == ["BinaryDAToken0", "Compact2", "Compact3", "Compact4", "Compact5", "Compact6"])
            #expect(!wlm.contains { $0.id == "Compact1" })
            #expect(try token(wlm, tb).binarySecret != token(wlm, messengerClear).binarySecret)

            // Whatever the request's ids, Compact<RST id> is never the site's own token.
            for ids in [[0, 1, 2], [1, 2, 3], [2, 3, 4], [5, 1, 9]] {
                let sites = [(messengerClear, "MBI_KEY_OLD"), ("contacts.msn.com", "MBI"), ("storage.msn.com", "MBI")]
                let response = try await sim.request(.POST, "/RST.srf", body: rstRequest(sites: sites, ids: ids))
                let answer = RSTReplyToken.parse(response.body)
                #expect(answer.map(\.address) == sites.map(\.0))
                for (site, id) in zip(sites, ids) {
                    let byNumber = answer.first { $0.id == "Compact\(id)" }
                    #expect(byNumber == nil || byNumber?.address != site.0, "ids \(ids): Compact\(id) is \(site.0)")
                }
            }
            try await sim.setSettings(#"{"rst_numbering":"rst_id"}"#)
            #expect(try await sim.rstTokens().map(\.id).last == "Compact5")
        }
    }

    @Test("RST2.srf answers in SOAP 1.2 with wst:Lifetime and the same tokens")
    func rst2() async throws {
        try await withLiveSim { sim in
            let response = try await sim.request(.POST, "/RST2.srf", body: rstRequest(sites: wlmSites))
            #expect(response.status == 200)
            #expect(response.body.contains(#"<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope""#))
            #expect(response.body.contains("<wst:Lifetime>") && !response.body.contains("<wst:LifeTime>"))
            #expect(response.body.contains("<wst:RequestedAttachedReference>"))
            #expect(response.body.contains(#"xmlns:wst="http://schemas.xmlsoap.org/ws/2005/02/trust""#))
            let tokens = RSTReplyToken.parse(response.body)
            #expect(tokens.map(\.id) == ["BinaryDAToken0", "Compact1", "Compact2", "Compact3", "Compact4", "Compact5"])
            #expect(try token(tokens, messengerClear).binarySecret != nil)
        }
    }

    @Test("the ticket lifetime is configurable; LifeTime shows it")
    func lifetime() async throws {
        try await withLiveSim { sim in
            try await sim.setSettings(#"{"lifetimes":{"ticket":8}}"#)
            let clear = try token(try await sim.rstTokens(), messengerClear)
            let formatter = ISO8601DateFormatter()
            let created = try #require(formatter.date(from: clear.created ?? ""))
            let expires = try #require(formatter.date(from: clear.expires ?? ""))
            #expect(expires.timeIntervalSince(created) == 8)
            let validation = try await sim.validate(clear.value)
            let issuedAt = try #require(formatter.date(from: validation["issued_at"] as? String ?? ""))
            let expiresAt = try #require(formatter.date(from: validation["expires_at"] as? String ?? ""))
            #expect(abs(expiresAt.timeIntervalSince(issuedAt) - 8) < 1)
        }
    }

    @Test("escaped credentials: &#39;, &apos; and &#x27; are apostrophes; a wrong password is FailedAuthentication")
    func escapedCredentials() async throws {
        try await withLiveSim { sim in
            let created = try await sim.control(
                .POST, "accounts", json: #"{"login":"o'neill@example.com","password":"it's <mine> & \"yours\""}"#)
            #expect(created.status == 201)
            for (user, password) in [
                ("o&#39;neill@example.com", "it&#39;s &lt;mine&gt; &amp; &quot;yours&quot;"),
                ("o&apos;neill@example.com", "it&apos;s &#60;mine&#62; &#38; &#34;yours&#34;"),
                ("o&#x27;neill@example.com", "it&#x27;s &lt;mine&gt; &amp; \"yours\""),
            ] {
                let response = try await sim.request(
                    .POST, "/RST.srf", body: rstRequest(username: user, password: password, sites: wlmSites))
                #expect(response.status == 200, "\(user) \(password)")
            }
            let wrong = try await sim.request(
                .POST, "/RST.srf",
                body: rstRequest(username: "o&#39;neill@example.com", password: "it&amp;#39;s", sites: wlmSites))
            #expect(wrong.status == 500)
            #expect(wrong.body.contains("<faultcode>wsse:FailedAuthentication</faultcode>"))
            #expect(wrong.body.contains("<faultstring>Authentication Failure</faultstring>"))
            let unknown = try await sim.request(
                .POST, "/RST.srf", body: rstRequest(username: "nobody@example.com", password: "x", sites: wlmSites))
            #expect(unknown.status == 500 && unknown.body.contains("wsse:FailedAuthentication"))
        }
    }
}
