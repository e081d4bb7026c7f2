import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

func rstEnvelope(username: String, password: String, sites: [String] = ["chatservice.live.com"]) -> String {
    let tokens = sites.enumerated().map { index, site in
        """
        <wst:RequestSecurityToken Id="RST\(index)"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>\
        <wsp:AppliesTo><wsa:EndpointReference><wsa:Address>\(site)</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>\
        <wsse:PolicyReference URI="MBI_SSL"></wsse:PolicyReference></wst:RequestSecurityToken>
        """
    }.joined()
    return """
        <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" \
        xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" \
        xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL">
        <Header><wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>\(username)</wsse:Username>\
        <wsse:Password>\(password)</wsse:Password></wsse:UsernameToken></wsse:Security></Header>
        <Body><ps:RequestMultipleSecurityTokens Id="RSTS">\(tokens)</ps:RequestMultipleSecurityTokens></Body></Envelope>
        """
}

func element(_ name: String, in text: String) -> String? {
    guard let start = text.range(of: "<\(name)"), let gt = text[start.upperBound...].firstIndex(of: ">"),
        let end = text[gt...].range(of: "</\(name)>")
    else { return nil }
    return String(text[text.index(after: gt)..<end.lowerBound])
}

@Suite("RST.srf, User/Initialization and rps/skypetoken")
struct ServiceTests {
    @Test("RST.srf issues a compact ticket with a LifeTime for each requested site")
    func rstSuccess() async throws {
        try await withLiveSim({ $0.tokenLifetime = 900 }) { sim in
            let response = try await sim.request(
                .POST, "/RST.srf", headers: [("Content-Type", "application/soap+xml")],
                body: rstEnvelope(
                    username: "alice@example.com", password: "correct horse",
                    sites: ["http://Passport.NET/tb", "messengerclear.live.com", "chatservice.live.com"]))
            #expect(response.status == 200)
            #expect(response.body.contains("<psf:reqstatus>0x0</psf:reqstatus>"))
            #expect(response.body.contains(#"<wsse:BinarySecurityToken Id="Compact2">t="#))
            let chat = try #require(response.body.range(of: "<wsa:Address>chatservice.live.com</wsa:Address>"))
            let after = String(response.body[chat.upperBound...])
            let created = try #require(element("wsu:Created", in: after))
            let expires = try #require(element("wsu:Expires", in: after))
            let formatter = ISO8601DateFormatter()
            let span = try #require(formatter.date(from: expires)).timeIntervalSince(
                try #require(formatter.date(from: created)))
            #expect(abs(span - 900) <= 1)
            let ticket = try #require(
                element("wsse:BinarySecurityToken Id=\"Compact2\"", in: after)
                    ?? element("wsse:BinarySecurityToken", in: after))
            #expect(ticket.hasPrefix("t=") && ticket.hasSuffix("&amp;p="))
            let raw = ticket.replacingOccurrences(of: "&amp;", with: "&")
            let validation = try await sim.validate(raw)
            #expect(validation["kind"] as? String == "ticket")
            #expect(validation["valid"] as? Bool == true)
            #expect(validation["scope"] as? String == "chatservice.live.com")
            // The proof key comes only for messengerclear.live.com.
            #expect(response.body.components(separatedBy: "<wst:BinarySecret>").count == 3)
        }
    }

    @Test("RST.srf faults: wrong password, redirect, profile accrual")
    func rstFaults() async throws {
        try await withLiveSim { sim in
            let wrong = try await sim.request(
                .POST, "/RST.srf", body: rstEnvelope(username: "alice@example.com", password: "bad"))
            #expect(wrong.body.contains("<faultcode>wsse:FailedAuthentication</faultcode>"))
            #expect(wrong.body.contains("<psf:reqstatus>0x80048823</psf:reqstatus>"))
            #expect(!wrong.body.contains("BinarySecurityToken"))

            let accrual = try await sim.request(
                .POST, "/RST.srf", body: rstEnvelope(username: "bob@example.com", password: "pw-bob"))
            #expect(accrual.body.contains("Profile accrual is required"))

            try await sim.addFault(#"{"endpoint":"rst","kind":"soap_fault","soap_fault":"redirect","count":1}"#)
            let redirect = try await sim.request(
                .POST, sim.base(host: "localhost") + "/RST.srf",
                body: rstEnvelope(username: "alice@example.com", password: "correct horse"))
            #expect(redirect.body.contains("<faultcode>psf:Redirect</faultcode>"))
            let target = try #require(element("psf:redirectUrl", in: redirect.body))
            #expect(target == "https://localhost:\(sim.server.port)/RST2.srf")
            let followed = try await sim.request(
                .POST, target, body: rstEnvelope(username: "alice@example.com", password: "correct horse"))
            #expect(followed.status == 200 && followed.body.contains("BinarySecurityToken"))

            try await sim.addFault(#"{"endpoint":"rst","kind":"soap_fault","soap_fault":"profile_accrual","count":1}"#)
            let injected = try await sim.request(
                .POST, "/RST.srf", body: rstEnvelope(username: "alice@example.com", password: "correct horse"))
            #expect(injected.body.contains("Profile accrual is required"))
            try await sim.addFault(
                #"{"endpoint":"rst","kind":"soap_fault","soap_fault":"failed_authentication","count":1}"#)
            let failed = try await sim.request(
                .POST, "/RST.srf", body: rstEnvelope(username: "alice@example.com", password: "correct horse"))
            #expect(failed.body.contains("wsse:FailedAuthentication") && !failed.body.contains("Profile accrual"))
        }
    }

    @Test("User/Initialization returns the UIC for valid cookies, and 401 without them")
    func userInitialization() async throws {
        try await withLiveSim({ $0.tokenLifetime = 1000 }) { sim in
            let (_, cookies) = try await sim.passwordLogin()
            let response = try await sim.request(
                .POST, "/v1/User/Initialization",
                headers: [("Cookie", cookieHeader(cookies)), ("Content-Type", "application/json")],
                body: #"{"trouterurl":"https://","connectionid":"a"}"#)
            #expect(response.status == 200)
            let json = response.json
            let tpc = try #require(json["TPC"] as? [String: Any])
            let st = try #require(Int64(tpc["St"] as? String ?? ""))
            let se = try #require(Int64(tpc["Se"] as? String ?? ""))
            #expect(se - st == 1_000_000)
            #expect(json["registrationTTLRefreshSeconds"] as? Int == 163)
            let container = try #require(json["MappingContainer"] as? String)
            #expect(container.contains("%"))
            let uic = try #require(container.removingPercentEncoding)
            #expect(try await sim.validate(uic)["kind"] as? String == "uic")
            #expect(try await sim.validate(uic)["valid"] as? Bool == true)

            let none = try await sim.request(
                .POST, "/v1/User/Initialization", headers: [("Content-Type", "application/json")],
                body: #"{"trouterurl":"https://","connectionid":"a"}"#)
            #expect(none.status == 401)
            var partial = cookies
            partial["WLSSC"] = nil
            let missing = try await sim.request(
                .POST, "/v1/User/Initialization", headers: [("Cookie", cookieHeader(partial))], body: "{}")
            #expect(missing.status == 401)
        }
    }

    @Test("rps/skypetoken takes the parameters as headers or as a form body")
    func skypetoken() async throws {
        try await withLiveSim({ $0.tokenLifetime = 3600 }) { sim in
            let access = try #require(try await sim.grant("alice@example.com")["access_token"] as? String)
            let viaHeaders = try await sim.request(
                .POST, "/rps/skypetoken",
                headers: [
                    ("scopes", "client"), ("clientVersion", "0/7.4.85.102/259/"), ("access_token", access),
                    ("partner", "999"),
                ], body: "")
            #expect(viaHeaders.status == 200)
            #expect(viaHeaders.json["expiresIn"] as? Int == 3600)
            let token = try #require(viaHeaders.json["skypetoken"] as? String)
            #expect(try await sim.validate(token)["kind"] as? String == "skypetoken")
            let viaForm = try await sim.request(
                .POST, "/rps/skypetoken",
                body: formEncode([
                    ("scopes", "client"), ("clientVersion", "0/7.4.85.102/259/"), ("access_token", access),
                    ("partner", "999"),
                ]))
            #expect(viaForm.status == 200)
            #expect(viaForm.json["skypetoken"] as? String != token)

            let bogus = try await sim.request(
                .POST, "/rps/skypetoken",
                body: formEncode([
                    ("scopes", "client"), ("access_token", "EwAbogus"), ("partner", "999"),
                ]))
            #expect(bogus.status == 401)
            #expect((bogus.json["status"] as? [String: Any])?["code"] as? Int == 40120)

            // A token of another scope is refused.
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            let ssl = try #require(
                try await sim.refresh(refreshToken, scope: "service::ssl.live.com::MBI_SSL").json["access_token"]
                    as? String)
            let wrongScope = try await sim.request(
                .POST, "/rps/skypetoken",
                body: formEncode([
                    ("scopes", "client"), ("access_token", ssl), ("partner", "999"),
                ]))
            #expect((wrongScope.json["status"] as? [String: Any])?["code"] as? Int == 40120)
        }
    }

    @Test("rps/skypetoken refuses an expired access token")
    func skypetokenExpired() async throws {
        try await withLiveSim({ $0.tokenLifetime = 1 }) { sim in
            let access = try #require(try await sim.grant("alice@example.com")["access_token"] as? String)
            try await Task.sleep(for: .milliseconds(1_200))
            let response = try await sim.request(
                .POST, "/rps/skypetoken",
                body: formEncode([
                    ("scopes", "client"), ("access_token", access), ("partner", "999"),
                ]))
            #expect(response.status == 401)
        }
    }
}
