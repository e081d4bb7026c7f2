import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

private let messengerClear = "messengerclear.live.com"
private let guid = "{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}"

/// livesim with its notification-server listener on.
private func withNS(_ body: (LiveSimFixture, Int) async throws -> Void) async throws {
    try await withLiveSim({ $0.nsHost = "127.0.0.1" }) { sim in
        try await body(sim, try requireNSPort(sim))
    }
}

extension LiveSimFixture {
    /// `ns_usr_logins`: method → success and failure counts.
    func usrLogins() async throws -> [String: [String: Int]] {
        try #require(try await counters()["ns_usr_logins"] as? [String: [String: Int]])
    }

    /// The messengerclear.live.com ticket (`t=...&p=`, unescaped) and its BinarySecret, and tb's secret.
    func ssoTicket(_ login: String = "alice@example.com", password: String = "correct horse") async throws -> (
        ticket: String, secret: String, tbSecret: String
    ) {
        let tokens = try await rstTokens(username: login, password: password)
        let clear = try #require(tokens.first { $0.address == messengerClear })
        let tb = try #require(tokens.first { $0.address == "http://Passport.NET/tb" })
        return (clear.value, try #require(clear.binarySecret), try #require(tb.binarySecret))
    }
}

private func counts(_ success: Int, _ failure: Int) -> [String: Int] { ["success": success, "failure": failure] }

/// The second USR for SSO: the ticket, the proof for the nonce the server sent, the guid.
private func sso(
    ticket: String, secret: String, guid: String? = guid, nonce: @escaping @Sendable (String) -> String = { $0 }
)
    -> @Sendable ([String]) -> [String]
{
    { given in
        [ticket, brokerProof(secret: secret, nonce: nonce(given.last ?? ""))] + (guid.map { [$0] } ?? [])
    }
}

private func expectOK(
    _ result: (replies: [ClassicReply], closed: Bool), _ trailer: String = "1 0",
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        result.replies.last?.line == "USR 4 OK alice@example.com \(trailer)", "\(result.replies)",
        sourceLocation: sourceLocation)
}

private func expect911(
    _ result: (replies: [ClassicReply], closed: Bool), sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(result.replies.last?.line == "911 4", "\(result.replies)", sourceLocation: sourceLocation)
    #expect(result.closed, sourceLocation: sourceLocation)
}

@Suite("Notification server: MSNP8-18 USR SSO and TWN")
struct RevivalNSTests {
    @Test("USR SSO at MSNP15 and MSNP18: GCF, MBI_KEY_OLD with a 64-character nonce, OK for the broker's proof")
    func ssoSuccess() async throws {
        try await withNS { sim, port in
            let (ticket, secret, _) = try await sim.ssoTicket()
            for version in [15, 18] {
                let result = try await classicLogin(
                    port: port,
                    USRScript(
                        version: version, answer: sso(ticket: ticket, secret: secret, guid: version >= 16 ? guid : nil))
                )
                expectOK(result)
                let lines = result.replies.map(\.line)
                #expect(lines.first == "VER 1 MSNP\(version) CVR0")
                #expect(result.replies[1].name == "CVR")
                #expect(result.replies[2].name == "GCF" && result.replies[2].payload?.contains("<shield>") == true)
                let challenge = result.replies[3].fields
                #expect(challenge.prefix(5) == ["USR", "3", "SSO", "S", "MBI_KEY_OLD"])
                let nonce = challenge.last ?? ""
                #expect(nonce.count == 64 && Data(base64Encoded: nonce)?.count == 48)
                #expect(!result.closed)
            }
            #expect(try await sim.usrLogins() == ["sso": counts(2, 0), "twn": counts(0, 0)])
            #expect(try await sim.nsLogins()["ssl-compact-ticket"] == counts(0, 0))
        }
    }

    @Test("USR SSO refusals: another nonce's proof, a Passport.NET/tb-keyed proof, no guid at MSNP18, and more")
    func ssoRefusals() async throws {
        try await withNS { sim, port in
            let (ticket, secret, tbSecret) = try await sim.ssoTicket()
            // A proof of another nonce (the right one with its last character changed to a different one).
            expect911(
                try await classicLogin(
                    port: port,
                    USRScript(
                        answer: sso(
                            ticket: ticket, secret: secret,
                            nonce: { String($0.dropLast()) + ($0.last == "A" ? "B" : "A") }))))
            expect911(try await classicLogin(port: port, USRScript(answer: sso(ticket: ticket, secret: tbSecret))))
            expect911(
                try await classicLogin(port: port, USRScript(answer: sso(ticket: ticket, secret: secret, guid: nil))))
            expect911(
                try await classicLogin(
                    port: port, USRScript(answer: sso(ticket: ticket, secret: secret, guid: "7108E71A"))))
            // The ticket as it stands in the XML, still escaped.
            let escaped = ticket.replacingOccurrences(of: "&", with: "&amp;")
            expect911(try await classicLogin(port: port, USRScript(answer: sso(ticket: escaped, secret: secret))))
            // Another site's ticket, with messengerclear's secret.
            let tokens = try await sim.rstTokens()
            let contacts = try #require(tokens.first { $0.address == "contacts.msn.com" }).value
            expect911(try await classicLogin(port: port, USRScript(answer: sso(ticket: contacts, secret: secret))))
            // Another account's login with alice's ticket.
            #expect(
                try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"pw"}"#).status
                    == 201)
            expect911(
                try await classicLogin(
                    port: port, USRScript(login: "erin@example.com", answer: sso(ticket: ticket, secret: secret))))
            #expect(try await sim.usrLogins() == ["sso": counts(0, 7), "twn": counts(0, 0)])
            // The same ticket still works with a right proof: none of these used it up.
            expectOK(try await classicLogin(port: port, USRScript(answer: sso(ticket: ticket, secret: secret))))
        }
    }

    @Test("an expired messengerclear ticket is refused")
    func ssoExpired() async throws {
        try await withNS { sim, port in
            try await sim.setSettings(#"{"lifetimes":{"ticket":1}}"#)
            let (ticket, secret, _) = try await sim.ssoTicket()
            try await Task.sleep(for: .milliseconds(1_200))
            expect911(try await classicLogin(port: port, USRScript(answer: sso(ticket: ticket, secret: secret))))
            #expect(try await sim.usrLogins()["sso"] == counts(0, 1))
        }
    }

    @Test("VER picks the highest of MSNP8-18 offered; none gets VER 0; each method only at its versions")
    func versions() async throws {
        try await withNS { sim, port in
            let replies = try await withClassic(port: port) { connection in
                var lines: [String?] = []
                try await connection.send("VER 1 MSNP21 MSNP18 MSNP13 MSNP8 CVR0")
                lines.append(try await connection.read()?.line)
                return lines
            }
            #expect(replies == ["VER 1 MSNP18 CVR0"])
            let refused = try await withClassic(port: port) { connection in
                try await connection.send("VER 1 MSNP19 MSNP7 CVR0")
                return (try await connection.read()?.line, try await connection.read() == nil)
            }
            #expect(refused.0 == "VER 1 0" && refused.1)
            // SSO before MSNP15 and TWN after MSNP14 are refused at USR I.
            for (version, method) in [(14, "SSO"), (15, "TWN")] {
                let result = try await withClassic(port: port) { connection in
                    try await connection.send("VER 1 MSNP\(version) CVR0")
                    _ = try await connection.read()
                    try await connection.send("USR 3 \(method) I alice@example.com")
                    return (try await connection.read()?.line, try await connection.read() == nil)
                }
                #expect(result.0 == "911 3" && result.1)
            }
            #expect(try await sim.usrLogins() == ["sso": counts(0, 1), "twn": counts(0, 1)])
        }
    }

    @Test(
        "USR TWN at MSNP12 with a ticket from the DALogin the nexus names; MSNP8 adds the friendly name; MSNP13 a GCF")
    func twnSuccess() async throws {
        try await withNS { sim, port in
            let nexus = try await sim.request(.GET, "/rdr/pprdr.asp")
            #expect(nexus.status == 200)
            let urls = try #require(nexus.header("PassportURLs"))
            #expect(urls.hasPrefix("DARealm=Passport.Net,DALogin=127.0.0.1:\(sim.server.port)/login2.srf,DAReg="))
            #expect(urls.hasSuffix(",ConfigVersion=16"))
            let signIn = try await sim.passport14()
            #expect(signIn.status == 200)
            let info = try #require(signIn.header("Authentication-Info"))
            #expect(
                info.hasPrefix("Passport1.4 da-status=success,tname=MSPAuth,tname=MSPProf,tname=MSPSec,from-PP='t="))
            #expect(info.hasSuffix("',ru=http://messenger.msn.com"))
            let ticket = try #require(fromPP(signIn))
            #expect(ticket.contains("&p=") && !ticket.contains(",") && !ticket.contains(" "))
            let twn = { (version: Int) in USRScript(version: version, method: "TWN", answer: { _ in [ticket] }) }
            let msnp12 = try await classicLogin(port: port, twn(12))
            expectOK(msnp12)
            #expect(msnp12.replies.map(\.name) == ["VER", "CVR", "USR", "USR"])
            let challenge = msnp12.replies[2].line
            #expect(challenge.hasPrefix("USR 3 TWN S ct="))
            #expect(challenge.hasSuffix(",rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"))
            expectOK(try await classicLogin(port: port, twn(8)), "alice%40example.com 1 0")
            let msnp13 = try await classicLogin(port: port, twn(13))
            expectOK(msnp13)
            #expect(msnp13.replies.map(\.name) == ["VER", "CVR", "GCF", "USR", "USR"])
            #expect(try await sim.usrLogins()["twn"] == counts(3, 0))
            // A Passport 1.4 ticket lives Escargot's 30 s unless told otherwise.
            let validation = try await sim.validate(ticket)
            #expect(validation["kind"] as? String == "passport_ticket")
            let formatter = ISO8601DateFormatter()
            let issued = try #require(formatter.date(from: validation["issued_at"] as? String ?? ""))
            let expires = try #require(formatter.date(from: validation["expires_at"] as? String ?? ""))
            #expect(abs(expires.timeIntervalSince(issued) - 30) < 1)
        }
    }

    @Test("the DALogin: 401 for a wrong password, an unknown user or no credentials; faults apply")
    func daLoginFailures() async throws {
        try await withLiveSim { sim in
            for response in [
                try await sim.passport14(password: "wrong"), try await sim.passport14(login: "nobody@example.com"),
            ] {
                #expect(response.status == 401)
                #expect(response.header("Authentication-Info") == nil)
                let challenge = try #require(response.header("WWW-Authenticate"))
                #expect(challenge.hasPrefix("Passport1.4 da-status=failed,srealm=Passport.NET,ts=-3,prompt,cburl="))
            }
            #expect(try await sim.request(.GET, "/login2.srf").status == 401)
            #expect(
                try await sim.request(.GET, "/login2.srf", headers: [("Authorization", "Basic YTpi")]).status == 401)
            #expect(try await sim.request(.POST, "/login2.srf", body: "").status == 405)
            let failures = try await sim.counters()["login_failures"] as? [String: Int]
            #expect(failures == ["login2_failed_authentication": 2, "login2_no_credentials": 2])

            try await sim.addFault(#"{"endpoint":"login2","kind":"status","status":503,"count":1}"#)
            #expect(try await sim.passport14().status == 503)
            #expect(try await sim.passport14().status == 200)
            try await sim.addFault(#"{"endpoint":"pprdr","kind":"status","status":500,"count":1}"#)
            #expect(try await sim.request(.GET, "/rdr/pprdr.asp").status == 500)
            let requests = try await sim.counters()["requests"] as? [String: Int]
            #expect(requests?["login2"] == 7 && requests?["pprdr"] == 5)

            // A redirect to another DALogin, followed with the same Authorization.
            try await sim.addFault(#"{"endpoint":"login2","kind":"soap_fault","soap_fault":"redirect","count":1}"#)
            let moved = try await sim.passport14()
            #expect(moved.status == 302)
            let location = try #require(moved.header("Location"))
            #expect(location == "https://127.0.0.1:\(sim.server.port)/login2.srf?lc=1033")
            let authorization =
                "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=alice%40example.com,pwd=correct%20horse,ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"
            let followed = try await sim.request(.GET, location, headers: [("Authorization", authorization)])
            #expect(followed.status == 200 && fromPP(followed) != nil)

            try await sim.setSettings(#"{"pprdr_header":"Passporturls"}"#)
            let nexus = try await sim.request(.GET, "/rdr/pprdr.asp")
            #expect(nexus.headers.contains { $0.0 == "Passporturls" })
            #expect(try await sim.passport14().status == 200)
        }
    }

    @Test("USR TWN refusals: an expired ticket, another account's, one that was never issued")
    func twnRefusals() async throws {
        try await withNS { sim, port in
            try await sim.setSettings(#"{"lifetimes":{"passport_ticket":1}}"#)
            let ticket = try #require(fromPP(try await sim.passport14()))
            try await Task.sleep(for: .milliseconds(1_200))
            let twn = { (login: String, ticket: String) in
                USRScript(version: 12, login: login, method: "TWN", answer: { _ in [ticket] })
            }
            expect911(try await classicLogin(port: port, twn("alice@example.com", ticket)))
            try await sim.setSettings(#"{"lifetimes":{"passport_ticket":30}}"#)
            let fresh = try #require(fromPP(try await sim.passport14()))
            #expect(
                try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"pw"}"#).status
                    == 201)
            expect911(try await classicLogin(port: port, twn("erin@example.com", fresh)))
            expect911(try await classicLogin(port: port, twn("alice@example.com", "t=bogus&p=bogus")))
            expectOK(try await classicLogin(port: port, twn("alice@example.com", fresh)))
            #expect(try await sim.usrLogins()["twn"] == counts(1, 3))
        }
    }

    @Test("the gateway carries the USR SSO exchange through the same state machine")
    func gatewaySSO() async throws {
        try await withNS { sim, _ in
            let (ticket, secret, _) = try await sim.ssoTicket()
            var sessionID: String?
            func post(_ lines: [String]) async throws -> [ClassicReply] {
                let query = sessionID.map { "SessionID=\($0)" } ?? "Action=open&Server=NS&IP=messenger.hotmail.com"
                let response = try await sim.request(
                    .POST, "/gateway/gateway.dll?" + query, headers: [("Content-Type", "application/x-msn-messenger")],
                    body: lines.map { $0 + "\r\n" }.joined())
                let messenger = response.header("X-MSN-Messenger") ?? ""
                if let range = messenger.range(of: "SessionID=") {
                    sessionID = String(messenger[range.upperBound...].prefix { $0 != ";" })
                }
                return ClassicReply.parseAll(Array(response.body.utf8)).replies
            }
            let first = try await post([
                "VER 1 MSNP18 CVR0", "CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 8.5.1302 msmsgs a",
                "USR 3 SSO I alice@example.com",
            ])
            #expect(first.map(\.name) == ["VER", "CVR", "GCF", "USR"])
            let nonce = try #require(first.last?.fields.last)
            let final = try await post(["USR 4 SSO S \(ticket) \(brokerProof(secret: secret, nonce: nonce)) \(guid)"])
            #expect(final.map(\.line) == ["USR 4 OK alice@example.com 1 0"])
            #expect(try await sim.usrLogins()["sso"] == counts(1, 0))
        }
    }
}
