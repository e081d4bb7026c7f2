import BrokerCore
import Foundation
import NIOHTTP1
import TestSupport
import Testing

@testable import LiveSim

private let chatservice = "chatservice.live.com"
private let sslScope = "service::ssl.live.com::MBI_SSL"

/// livesim with its notification-server listener on.
private func withNS(
    _ configure: @escaping (inout LiveSimConfiguration) -> Void = { _ in },
    _ body: (LiveSimFixture) async throws -> Void
)
    async throws
{
    try await withLiveSim(
        { config in
            config.nsHost = "127.0.0.1"
            configure(&config)
        }, body)
}

extension LiveSimFixture {
    /// A compact ticket from RST.srf, as it stands in the SOAP reply (`t=...&amp;p=`, XML-escaped).
    func rstTicket(_ account: AccountSpec = TestAccounts.alice, site: String = chatservice) async throws -> String {
        let response = try await request(
            .POST, "/RST.srf", body: rstEnvelope(username: account.login, password: account.password, sites: [site]))
        return try #require(element("wsse:BinarySecurityToken", in: response.body))
    }

    /// A `service::ssl.live.com::MBI_SSL` access token, from a grant and a refresh.
    func sslAccessToken(_ login: String = "alice@example.com") async throws -> String {
        let refreshToken = try #require(try await grant(login)["refresh_token"] as? String)
        return try #require(try await refresh(refreshToken, scope: sslScope).json["access_token"] as? String)
    }

    /// A UIC from User/Initialization for these session cookies (MappingContainer, decoded).
    func uic(cookies: String) async throws -> String {
        let response = try await request(
            .POST, "/v1/User/Initialization",
            headers: [("Cookie", cookies), ("Content-Type", "application/json")],
            body: #"{"trouterurl":"https://","connectionid":"a"}"#)
        return try #require((response.json["MappingContainer"] as? String)?.removingPercentEncoding)
    }

    /// `ns_logins`: method → success and failure counts.
    func nsLogins() async throws -> [String: [String: Int]] {
        try #require(try await counters()["ns_logins"] as? [String: [String: Int]])
    }
}

private func xmlEscape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
        of: ">", with: "&gt;")
}

/// `<user>` with an already XML-escaped ticket.
private func sslUser(_ escapedTicket: String, uic: String? = nil, site: String? = chatservice) -> String {
    "<user><ssl-compact-ticket>\(escapedTicket)</ssl-compact-ticket>"
        + (uic.map { "<uic>\(xmlEscape($0))</uic>" } ?? "")
        + (site.map { "<ssl-site-name>\($0)</ssl-site-name>" } ?? "") + "</user>"
}

private let webUser = "<user><web-compact-ticket /></user>"

private func expectLoggedIn(_ replies: [MSNPReply], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(
        replies.map(\.line).map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
            == ["CNT 1 CON", "ATH 2 CON", "BND 3 CON", "ATH 0 CON"], sourceLocation: sourceLocation)
}

private func expectRefused(_ replies: [MSNPReply], _ line: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(replies.last?.line == line, "replies: \(replies)", sourceLocation: sourceLocation)
}

private func counts(_ success: Int, _ failure: Int) -> [String: Int] { ["success": success, "failure": failure] }

@Suite("Notification server: the MSNP24 login exchange over TCP and the HTTPS gateway")
struct NotificationServerTests {
    @Test("livesim's challenge answers the published vector and agrees with the client's implementation")
    func challenge() {
        #expect(
            NSChallenge.answer(
                nonce: "22210219642164014968", productID: "PROD0090YUAUV{2B", productKey: "YMM8C_H7KCQ2S_KL")
                == "85ecb0db8f32113df79ce0892b9a102c")
        // Every padding case: nonce + productId lengths of each residue mod 8, and aligned ones.
        for length in 1...48 {
            let nonce = String((0..<length).map { _ in "0123456789".randomElement()! })
            #expect(
                NSChallenge.answer(
                    nonce: nonce, productID: Challenge.defaultProductID, productKey: Challenge.defaultProductKey)
                    == Challenge.answer(nonce: nonce), "nonce \(nonce)")
        }
        #expect(
            NSChallenge.answer(
                nonce: "1489346893432768563572687681", productID: "PROD0119GSJUC$18", productKey: "ILTXC!4IXB5FB*PX")
                == Challenge.answer(
                    nonce: "1489346893432768563572687681", productID: "PROD0119GSJUC$18", productKey: "ILTXC!4IXB5FB*PX"
                ))
    }

    @Test("the listener is off by default")
    func offByDefault() async throws {
        try await withLiveSim { sim in
            #expect(sim.server.nsPort == nil)
            let logins = try await sim.nsLogins()
            #expect(
                logins == [
                    "ssl-compact-ticket": counts(0, 0), "ssl-compact-ticket-uic": counts(0, 0),
                    "web-compact-ticket": counts(0, 0), "ssl-compact-ticket-skylogin": counts(0, 0),
                    "skype-uic": counts(0, 0),
                ])
        }
    }

    @Test("ssl-compact-ticket with an RST.srf ticket for chatservice.live.com: the seed's whole exchange over TCP")
    func sslCompactTicket() async throws {
        try await withNS { sim in
            let ticket = try await sim.rstTicket()
            let (replies, _) = try await tcpLogin(sim, LoginScript(ath: sslUser(ticket)))
            expectLoggedIn(replies)
            guard replies.count == 4 else { return }
            let (cnt, ath, bnd, final) = (replies[0], replies[1], replies[2], replies[3])
            #expect(cnt.headers.isEmpty)
            #expect(UUID(uuidString: cnt.element("nonce") ?? "") != nil)
            #expect(cnt.body.hasPrefix("<connect-response><ver>2</ver><qostest>false</qostest><nonce>"))
            #expect(ath.body == NSSession.authResponse)
            let utc = try #require(Int(bnd.headers["UtcTime"] ?? ""))
            #expect(abs(Double(utc) - Date().timeIntervalSince1970) < 60)
            #expect(Int(bnd.headers["Registration-Token-Expiry"] ?? "") ?? 0 > utc)
            let registration = try #require(bnd.headers["Set-Registration"])
            #expect(Data(base64Encoded: registration) != nil && registration.count > 100)
            let context = try #require(bnd.headers["Context"])
            #expect(context.count == 16 && context.allSatisfy(\.isHexDigit))
            #expect(bnd.element("nonce")?.allSatisfy(\.isNumber) == true)
            #expect(bnd.element("sample-window") == "0" && bnd.element("utctime") == String(utc))
            #expect(final.headers == ["Context": context])
            #expect(final.body == NSSession.authResponse)
            // The lengths on the wire count the header block, the blank line and the body.
            #expect(final.line == "ATH 0 CON \(("Context: \(context)\r\n\r\n" + NSSession.authResponse).utf8.count)")
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(1, 0))
        }
    }

    @Test(
        "ssl-compact-ticket with a service::ssl.live.com::MBI_SSL access token, with or without &p=, whitespace allowed"
    )
    func sslAccessToken() async throws {
        try await withNS { sim in
            let token = try await sim.sslAccessToken()
            expectLoggedIn(
                try await tcpLogin(
                    sim, LoginScript(ath: "<user><ssl-compact-ticket>t=\(token)</ssl-compact-ticket></user>")
                ).replies)
            let pretty = """
                <user>
                  <ssl-compact-ticket>t=\(token)&amp;p=</ssl-compact-ticket>
                  <ssl-site-name>chatservice.live.com</ssl-site-name>
                </user>
                """
            expectLoggedIn(try await tcpLogin(sim, LoginScript(ath: pretty)).replies)
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(2, 0))
        }
    }

    @Test("ssl-compact-ticket-uic: a ticket plus the UIC from User/Initialization with the password login's cookies")
    func sslCompactTicketUIC() async throws {
        try await withNS { sim in
            let (_, cookies) = try await sim.passwordLogin()
            let uic = try await sim.uic(cookies: cookieHeader(cookies))
            let ticket = try await sim.rstTicket()
            expectLoggedIn(try await tcpLogin(sim, LoginScript(ath: sslUser(ticket, uic: uic))).replies)
            // With the access-token form and the seed's <id>, too.
            let token = try await sim.sslAccessToken()
            let withID =
                "<user><ssl-compact-ticket>t=\(token)</ssl-compact-ticket><uic>\(xmlEscape(uic))</uic><id>alice@example.com</id></user>"
            expectLoggedIn(try await tcpLogin(sim, LoginScript(ath: withID)).replies)
            let logins = try await sim.nsLogins()
            #expect(
                logins == [
                    "ssl-compact-ticket": counts(0, 0), "ssl-compact-ticket-uic": counts(2, 0),
                    "web-compact-ticket": counts(0, 0), "ssl-compact-ticket-skylogin": counts(0, 0),
                    "skype-uic": counts(0, 0),
                ])
        }
    }

    @Test("web-compact-ticket over the HTTPS gateway with X-MSN-Auth: Use-Cookie and the session cookies")
    func webCompactTicketGateway() async throws {
        try await withNS { sim in
            let (_, cookies) = try await sim.passwordLogin()
            var gateway = GatewayClient(sim: sim, cookies: cookieHeader(cookies))
            let replies = try await runLogin(LoginScript(ath: webUser)) { try await gateway.exchange($0) }
            expectLoggedIn(replies)
            let messenger = try #require(gateway.messenger)
            let sessionID = try #require(gateway.sessionID)
            #expect(messenger == "SessionID=\(sessionID); GW-IP=127.0.0.1:\(sim.server.port)")
            // Nothing is pending once the exchange is done.
            #expect(try await gateway.post([], action: "poll").isEmpty)
            #expect(gateway.lastStatus == 200)
            #expect(try await sim.nsLogins()["web-compact-ticket"] == counts(1, 0))
            #expect((try await sim.counters()["requests"] as? [String: Int])?["gateway"] == 5)
        }
    }

    @Test("the gateway carries several commands per request and the ssl-compact-ticket methods too")
    func gatewayPipelined() async throws {
        try await withNS { sim in
            let ticket = try await sim.rstTicket()
            var gateway = GatewayClient(sim: sim, useCookie: false)
            let athPayload = Array(("\r\n" + sslUser(ticket)).utf8)
            let first = try await gateway.post(
                msnp("CNT", 1, "CON", body: connectBody) + Array("ATH 2 CON\\USER \(athPayload.count)\r\n".utf8)
                    + athPayload
                    + msnp("BND", 3, "CON\\MSGR", body: msgrBody))
            #expect(first.map(\.name) == ["CNT", "ATH", "BND"])
            let bnd = try #require(first.last)
            let nonce = try #require(bnd.element("nonce"))
            let final = try await gateway.post(
                msnp(
                    "PUT", 4, "MSGR\\CHALLENGE",
                    body:
                        "<challenge><appId>PROD0090YUAUV{2B</appId><response>\(Challenge.answer(nonce: nonce))</response></challenge>",
                    headers: [("Registration", bnd.headers["Set-Registration"] ?? "")]))
            #expect(final.map(\.line).first?.hasPrefix("ATH 0 CON ") == true)
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(1, 0))
        }
    }

    @Test("TCP framing: a command split into single bytes, and several commands in one write")
    func framing() async throws {
        try await withNS { sim in
            let token = try await sim.sslAccessToken()
            let port = try requireNSPort(sim)
            let names = try await withMSNP(port: port) { connection in
                for byte in msnp("CNT", 1, "CON", body: connectBody) { try await connection.send([byte]) }
                var names = [try await connection.read()?.name]
                let ath = Array("\r\n<user><ssl-compact-ticket>t=\(token)</ssl-compact-ticket></user>".utf8)
                try await connection.send(
                    Array("ATH 2 CON\\USER \(ath.count)\r\n".utf8) + ath + msnp("BND", 3, "CON\\MSGR", body: msgrBody))
                names.append(try await connection.read()?.name)
                names.append(try await connection.read()?.name)
                return names
            }
            #expect(names == ["CNT", "ATH", "BND"])
        }
    }

    // MARK: - Refusals

    @Test("a ticket livesim never issued: 911, the connection closes, a failure is counted")
    func wrongTicket() async throws {
        try await withNS { sim in
            let (replies, closed) = try await tcpLogin(sim, LoginScript(ath: sslUser("t=EwCobogusbogusbogus&amp;p=")))
            expectRefused(replies, "911 2 0")
            #expect(closed)
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(0, 1))
        }
    }

    @Test("an expired ticket and an expired access token: 911")
    func expired() async throws {
        try await withNS { sim in
            try await sim.setSettings(#"{"lifetimes":{"ticket":1,"access_token":1}}"#)
            let ticket = try await sim.rstTicket()
            let token = try await sim.sslAccessToken()
            try await Task.sleep(for: .milliseconds(1_200))
            expectRefused(try await tcpLogin(sim, LoginScript(ath: sslUser(ticket))).replies, "911 2 0")
            expectRefused(try await tcpLogin(sim, LoginScript(ath: sslUser("t=\(token)"))).replies, "911 2 0")
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(0, 2))
        }
    }

    @Test(
        "credentials of the wrong kind: another site's ticket, another scope's token, a missing site name, another account's UIC"
    )
    func wrongCredentials() async throws {
        try await withNS { sim in
            let otherSite = try await sim.rstTicket(site: "messengerclear.live.com")
            expectRefused(try await tcpLogin(sim, LoginScript(ath: sslUser(otherSite))).replies, "911 2 0")
            let skype = try #require(try await sim.grant("alice@example.com")["access_token"] as? String)
            expectRefused(try await tcpLogin(sim, LoginScript(ath: sslUser("t=\(skype)"))).replies, "911 2 0")
            let ticket = try await sim.rstTicket()
            expectRefused(try await tcpLogin(sim, LoginScript(ath: sslUser(ticket, site: nil))).replies, "911 2 0")
            expectRefused(
                try await tcpLogin(sim, LoginScript(ath: sslUser(ticket, site: "contacts.msn.com"))).replies, "911 2 0")
            expectRefused(try await tcpLogin(sim, LoginScript(ath: "<user></user>")).replies, "911 2 0")

            // bob's cookies (a direct grant; his password sign-in wants a second factor) give bob's UIC.
            let bobCookies = try #require(try await sim.grant("bob@example.com")["cookies"] as? String)
            let bobUIC = try await sim.uic(cookies: bobCookies)
            expectRefused(try await tcpLogin(sim, LoginScript(ath: sslUser(ticket, uic: bobUIC))).replies, "911 2 0")
            expectRefused(
                try await tcpLogin(sim, LoginScript(ath: sslUser(ticket, uic: "AAAAAAObogus"))).replies, "911 2 0")
            let logins = try await sim.nsLogins()
            #expect(
                logins == [
                    "ssl-compact-ticket": counts(0, 4), "ssl-compact-ticket-uic": counts(0, 2),
                    "web-compact-ticket": counts(0, 0), "ssl-compact-ticket-skylogin": counts(0, 0),
                    "skype-uic": counts(0, 0),
                ])
        }
    }

    @Test("a wrong challenge answer or appId: 540 after BND, counted as a failure")
    func wrongChallenge() async throws {
        try await withNS { sim in
            let ticket = try await sim.rstTicket()
            var script = LoginScript(ath: sslUser(ticket))
            script.answer = { Challenge.answer(nonce: $0 + "1") }
            let (replies, closed) = try await tcpLogin(sim, script)
            #expect(replies.map(\.name) == ["CNT", "ATH", "BND", "540"])
            expectRefused(replies, "540 4 0")
            #expect(closed)
            var wrongApp = LoginScript(ath: sslUser(ticket))
            wrongApp.appID = "PROD0119GSJUC$18"
            wrongApp.answer = {
                Challenge.answer(nonce: $0, productID: "PROD0119GSJUC$18", productKey: "ILTXC!4IXB5FB*PX")
            }
            expectRefused(try await tcpLogin(sim, wrongApp).replies, "540 4 0")
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(0, 2))
        }
    }

    @Test("a PUT without the Registration it was given, or with another one: 540")
    func registration() async throws {
        try await withNS { sim in
            let token = try await sim.sslAccessToken()
            var missing = LoginScript(ath: sslUser("t=\(token)"))
            missing.registration = { _ in nil }
            expectRefused(try await tcpLogin(sim, missing).replies, "540 4 0")
            var other = LoginScript(ath: sslUser("t=\(token)"))
            other.registration = { String($0.dropLast(4)) + ($0.hasSuffix("AAA=") ? "BBB=" : "AAA=") }
            expectRefused(try await tcpLogin(sim, other).replies, "540 4 0")
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(0, 2))
        }
    }

    @Test("web-compact-ticket over TCP is refused, and on the gateway without Use-Cookie or valid cookies")
    func webCompactTicketRefused() async throws {
        try await withNS { sim in
            let (replies, closed) = try await tcpLogin(sim, LoginScript(ath: webUser))
            expectRefused(replies, "911 2 0")
            #expect(closed)

            let (_, cookies) = try await sim.passwordLogin()
            var noHeader = GatewayClient(sim: sim, cookies: cookieHeader(cookies), useCookie: false)
            expectRefused(try await runLogin(LoginScript(ath: webUser)) { try await noHeader.exchange($0) }, "911 2 0")
            #expect(noHeader.messenger?.hasSuffix("; Session=close") == true)
            // The closed session is gone.
            _ = try await noHeader.post(msnp("BND", 3, "CON\\MSGR", body: msgrBody))
            #expect(noHeader.lastStatus == 400)

            var partial = cookies
            partial["WLSSC"] = nil
            var badCookies = GatewayClient(sim: sim, cookies: cookieHeader(partial))
            expectRefused(
                try await runLogin(LoginScript(ath: webUser)) { try await badCookies.exchange($0) }, "911 2 0")
            var noCookies = GatewayClient(sim: sim)
            expectRefused(try await runLogin(LoginScript(ath: webUser)) { try await noCookies.exchange($0) }, "911 2 0")
            try await sim.control(.POST, "accounts/alice@example.com/revoke", json: "{}")
            var revoked = GatewayClient(sim: sim, cookies: cookieHeader(cookies))
            expectRefused(try await runLogin(LoginScript(ath: webUser)) { try await revoked.exchange($0) }, "911 2 0")
            #expect(try await sim.nsLogins()["web-compact-ticket"] == counts(0, 5))
        }
    }

    @Test("malformed and unexpected commands: 715 and close")
    func malformed() async throws {
        try await withNS { sim in
            let port = try requireNSPort(sim)
            for (bytes, expected) in [
                (Array("CNT 7 CON\r\n".utf8), "715 7 0"),
                (Array("CNT x CON 0\r\n".utf8), "715 0 0"),
                (Array("CNT 3 CON 12\r\nno blank line".utf8), "715 3 0"),
                (msnp("ATH", 5, "CON\\USER", body: webUser), "715 5 0"),
                (msnp("CNT", 9, "CON", body: "<hello/>"), "715 9 0"),
            ] {
                let (reply, closed) = try await withMSNP(port: port) { connection in
                    try await connection.send(bytes)
                    let reply = try await connection.read()
                    return (reply, try await connection.read() == nil)
                }
                #expect(reply?.line == expected)
                #expect(closed)
            }
            // Out of order after ATH counts against the method.
            let token = try await sim.sslAccessToken()
            let replies = try await withMSNP(port: port) { connection in
                var replies: [MSNPReply] = []
                for bytes in [
                    msnp("CNT", 1, "CON", body: connectBody),
                    msnp("ATH", 2, "CON\\USER", body: sslUser("t=\(token)")),
                    msnp("PUT", 3, "MSGR\\CHALLENGE", body: "<challenge/>"),
                ] {
                    if let reply = try await connection.exchange(bytes) { replies.append(reply) }
                }
                return replies
            }
            #expect(replies.map(\.line).last == "715 3 0")
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(0, 1))
        }
    }

    @Test("gateway: POST only, a known SessionID, Server=NS; faults can target it")
    func gatewayRequests() async throws {
        try await withNS { sim in
            #expect(try await sim.request(.GET, "/gateway/gateway.dll?Action=open&Server=NS").status == 405)
            #expect(try await sim.request(.POST, "/gateway/gateway.dll?SessionID=1.2", body: "").status == 400)
            #expect(try await sim.request(.POST, "/gateway/gateway.dll?Action=open&Server=SB", body: "").status == 400)
            var gateway = GatewayClient(sim: sim)
            #expect(try await gateway.post([]).isEmpty)
            #expect(gateway.lastStatus == 200 && gateway.sessionID != nil)
            #expect(try await gateway.post([], action: "poll").isEmpty)

            try await sim.addFault(#"{"endpoint":"gateway","kind":"status","status":503,"count":1}"#)
            #expect(try await sim.request(.POST, "/gateway/gateway.dll?Action=open&Server=NS", body: "").status == 503)
            #expect(try await sim.request(.POST, "/gateway/gateway.dll?Action=open&Server=NS", body: "").status == 200)
        }
    }
}
