import Foundation
import NIOHTTP1
import TestSupport
import Testing

@testable import LiveSim

private func xmlEscape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(
        of: ">", with: "&gt;")
}

private func counts(_ success: Int, _ failure: Int) -> [String: Int] { ["success": success, "failure": failure] }

private func steps(_ replies: [MSNPReply]) -> [String] {
    replies.map(\.line).map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
}

private let loggedIn = ["CNT 1 CON", "ATH 2 CON", "BND 3 CON", "ATH 0 CON"]

/// livesim with both the notification server and the login server on.
private func withNSAndSkyLogin(_ body: (LiveSimFixture) async throws -> Void) async throws {
    try await withSkyLogin({ $0.nsHost = "127.0.0.1" }, body)
}

@Suite("Notification server: the skype-uic and ssl-compact-ticket-skylogin logins")
struct SkyLoginNSTests {
    @Test("CNT's nonce is a GUID; skype-uic logs in with a UIC signed over it, three times, and not over another")
    func skypeUIC() async throws {
        try await withNSAndSkyLogin { sim in
            let credentials = try await sim.skyPasswordCredentials()
            var nonces: Set<String> = []
            for round in 0..<3 {
                let (replies, _) = try await tcpLogin(
                    sim,
                    LoginScript(
                        ath: "",
                        athForNonce: { nonce in
                            var uic = skyUIC(credentials: credentials, nonce: nonce)
                            // SkyLogin's OpenSSL Base64 breaks lines every 64 characters: whitespace is ignored.
                            if round == 1 {
                                uic = stride(from: 0, to: uic.count, by: 64).map {
                                    String(uic.dropFirst($0).prefix(64)) + "\n"
                                }.joined()
                            }
                            let id = round == 2 ? "TestUser" : "testuser"
                            return "<user><uic>\(uic)</uic><id>\(id)</id></user>"
                        }))
                #expect(steps(replies) == loggedIn, "round \(round): \(replies)")
                let nonce = try #require(replies.first?.element("nonce"))
                #expect(nonce.count == 36 && UUID(uuidString: nonce) != nil)
                nonces.insert(nonce)
            }
            #expect(nonces.count == 3)
            // /validate reports on a UIC's credentials.
            let validation = try await sim.validate(skyUIC(credentials: credentials, nonce: "any"))
            #expect(validation["kind"] as? String == "skylogin")
            #expect(validation["valid"] as? Bool == true)
            #expect(validation["account"] as? String == "testuser")
            #expect((try await sim.counters()["requests_by_account"] as? [String: Int])?["testuser"] == 1)
            #expect(try await sim.nsLogins()["skype-uic"] == counts(3, 0))

            // Signed over another nonce, for another name, or not a UIC at all: 911 and closed.
            let refusals: [@Sendable (String) -> String] = [
                { _ in
                    let other = UUID().uuidString.lowercased()
                    return "<user><uic>\(skyUIC(credentials: credentials, nonce: other))</uic><id>testuser</id></user>"
                },
                { "<user><uic>\(skyUIC(credentials: credentials, nonce: $0))</uic><id>someoneelse</id></user>" },
                { "<user><uic>\(skyUIC(credentials: credentials, nonce: $0))</uic></user>" },
                { _ in "<user><uic>AAAAnotauic</uic><id>testuser</id></user>" },
            ]
            for ath in refusals {
                let (replies, closed) = try await tcpLogin(sim, LoginScript(ath: "", athForNonce: ath))
                #expect(replies.last?.line == "911 2 0", "\(replies)")
                #expect(closed)
            }
            #expect(try await sim.nsLogins()["skype-uic"] == counts(3, 4))
        }
    }

    @Test("skype-uic refuses expired, untrusted and revoked credentials")
    func skypeUICRefusals() async throws {
        try await withNSAndSkyLogin { sim in
            let password: (SkyTestClient) -> [UInt8] = { $0.passwordPlain(name: "testuser", password: "secret") }
            var refused: [[UInt8]] = []
            for kind in ["expired", "untrusted"] {
                try await sim.addFault(#"{"endpoint":"skylogin","kind":"\#(kind)","count":1}"#)
                refused.append(try #require(try await sim.skyLogin(password)?.credentials))
            }
            let revoked = try await sim.skyPasswordCredentials()
            _ = try await sim.control(.POST, "accounts/testuser/revoke", json: "{}")
            refused.append(revoked)
            for credentials in refused {
                let (replies, _) = try await tcpLogin(
                    sim,
                    LoginScript(
                        ath: "",
                        athForNonce: {
                            "<user><uic>\(skyUIC(credentials: credentials, nonce: $0))</uic><id>testuser</id></user>"
                        }
                    ))
                #expect(replies.last?.line == "911 2 0", "\(replies)")
            }
            #expect(try await sim.nsLogins()["skype-uic"] == counts(0, 3))
            // New credentials work again.
            let fresh = try await sim.skyPasswordCredentials()
            let (replies, _) = try await tcpLogin(
                sim,
                LoginScript(
                    ath: "",
                    athForNonce: { "<user><uic>\(skyUIC(credentials: fresh, nonce: $0))</uic><id>testuser</id></user>" }
                ))
            #expect(steps(replies) == loggedIn)
        }
    }

    @Test("ssl-compact-ticket-skylogin: the ssl.live.com token with the same account's SkyLogin credentials")
    func sslCompactTicketSkyLogin() async throws {
        try await withNSAndSkyLogin { sim in
            let loginToken = try await sim.loginSkypeToken()
            let credentials = try #require(try await sim.skyLogin { $0.oauthPlain(token: loginToken) }?.credentials)
            try await sim.addFault(#"{"endpoint":"skylogin","kind":"expired","count":1}"#)
            let expired = try #require(try await sim.skyLogin { $0.oauthPlain(token: loginToken) }?.credentials)
            let skypeName = try await sim.skyPasswordCredentials()
            // A new grant for ssl.live.com replaces alice's grant family; the credentials stay valid.
            let ticket = try await sim.sslAccessToken()
            let bobTicket = try await sim.sslAccessToken("bob@example.com")
            func user(
                _ ticket: String, _ credentials: [UInt8], id: String = "alice@example.com", alias: String = "live:alice"
            ) -> String {
                "<user><ssl-compact-ticket>t=\(xmlEscape(ticket))</ssl-compact-ticket>"
                    + "<uic>\(Data(credentials).base64EncodedString())</uic>"
                    + "<id>\(id)</id><alias>\(alias)</alias></user>"
            }
            for ath in [user(ticket, credentials), user(ticket, credentials, alias: "Live:Alice")] {
                #expect(steps(try await tcpLogin(sim, LoginScript(ath: ath)).replies) == loggedIn)
            }
            let refusals = [
                user(bobTicket, credentials, id: "bob@example.com"), user(ticket, credentials, alias: "live:bob"),
                user(ticket, skypeName, alias: "testuser"), user(ticket, expired),
                user(ticket, credentials, id: "bob@example.com"),
                "<user><ssl-compact-ticket>t=\(xmlEscape(ticket))</ssl-compact-ticket><uic>AAAA</uic>"
                    + "<id>alice@example.com</id><alias>live:alice</alias></user>",
            ]
            for ath in refusals {
                let (replies, closed) = try await tcpLogin(sim, LoginScript(ath: ath))
                #expect(replies.last?.line == "911 2 0", "\(replies)")
                #expect(closed)
            }
            let logins = try await sim.nsLogins()
            #expect(logins["ssl-compact-ticket-skylogin"] == counts(2, 6))
            #expect(logins["ssl-compact-ticket"] == counts(0, 0))
            #expect(logins["ssl-compact-ticket-uic"] == counts(0, 0))
        }
    }
}
