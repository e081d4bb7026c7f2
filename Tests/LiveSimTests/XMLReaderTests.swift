import BrokerCore
import Foundation
import LiveProtocol
import NIOHTTP1
import TestSupport
import Testing

@testable import LiveSim

#if canImport(Glibc)
    import Glibc
#endif

/// RST requests written the ways clients wrote them.
enum RSTShapes {
    /// libpurple's template: an XML declaration in single quotes, a default SOAP 1.1 namespace,
    /// `ps:AuthInfo`, the password escaped by GLib (an apostrophe is `&#39;`).
    static func purple(username: String = "alice@example.com", password: String) -> String {
        """
        <?xml version='1.0' encoding='utf-8'?>\
        <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" \
        xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" \
        xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" \
        xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" xmlns:wssc="http://schemas.xmlsoap.org/ws/2004/04/sc" \
        xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust"><Header><ps:AuthInfo \
        xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="PPAuthInfo">\
        <ps:HostingApp>{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}</ps:HostingApp><ps:BinaryVersion>4</ps:BinaryVersion>\
        <ps:UIVersion>1</ps:UIVersion><ps:Cookies></ps:Cookies><ps:RequestParams>AQAAAAIAAABsYwQAAAAxMDMz</ps:RequestParams>\
        </ps:AuthInfo><wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>\(username)</wsse:Username>\
        <wsse:Password>\(password)</wsse:Password></wsse:UsernameToken></wsse:Security></Header><Body>\
        <ps:RequestMultipleSecurityTokens xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">\
        <wst:RequestSecurityToken Id="RST0"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue\
        </wst:RequestType><wsp:AppliesTo><wsa:EndpointReference><wsa:Address>http://Passport.NET/tb</wsa:Address>\
        </wsa:EndpointReference></wsp:AppliesTo></wst:RequestSecurityToken><wst:RequestSecurityToken Id="RST1">\
        <wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType><wsp:AppliesTo>\
        <wsa:EndpointReference><wsa:Address>messengerclear.live.com</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>\
        <wsse:PolicyReference URI="MBI_KEY_OLD"></wsse:PolicyReference></wst:RequestSecurityToken>\
        </ps:RequestMultipleSecurityTokens></Body></Envelope>
        """
    }

    /// SOAP 1.2 and OASIS WS-Security with no prefix at all: every element in a default namespace.
    static func unprefixed(username: String = "alice@example.com", password: String) -> String {
        """
        <Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Header><Security \
        xmlns="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><UsernameToken>\
        <Username>\(username)</Username><Password>\(password)</Password></UsernameToken></Security></Header><Body>\
        <RequestMultipleSecurityTokens xmlns="http://schemas.microsoft.com/Passport/SoapServices/PPCRL" Id="RSTS">\
        <RequestSecurityToken xmlns="http://schemas.xmlsoap.org/ws/2005/02/trust" Id="RST3"><AppliesTo \
        xmlns="http://schemas.xmlsoap.org/ws/2004/09/policy"><EndpointReference xmlns="http://www.w3.org/2005/08/addressing">\
        <Address> chatservice.live.com </Address></EndpointReference></AppliesTo><PolicyReference \
        xmlns="http://schemas.xmlsoap.org/ws/2004/09/policy" URI="MBI_SSL"/></RequestSecurityToken>\
        </RequestMultipleSecurityTokens></Body></Envelope>
        """
    }

    /// `soap:` for the envelope and unusual prefixes for the rest.
    static func soapPrefix(username: String = "alice@example.com", password: String) -> String {
        """
        <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Header><s:Security \
        xmlns:s="http://schemas.xmlsoap.org/ws/2003/06/secext"><s:UsernameToken><s:Username>\(username)</s:Username>\
        <s:Password>\(password)</s:Password></s:UsernameToken></s:Security></soap:Header><soap:Body><t:RequestSecurityToken \
        xmlns:t="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:a="http://schemas.xmlsoap.org/ws/2004/03/addressing" \
        Id="RST0"><a:EndpointReference><a:Address>chatservice.live.com</a:Address></a:EndpointReference>\
        </t:RequestSecurityToken></soap:Body></soap:Envelope>
        """
    }

    /// The billion laughs: 10^9 "lol"s once expanded, as the password.
    static let billionLaughs: String = {
        var entities = [#"<!ENTITY lol "lol">"#]
        for level in 1...9 {
            let previous = level == 1 ? "lol" : "lol\(level - 1)"
            entities.append("<!ENTITY lol\(level) \"\(String(repeating: "&\(previous);", count: 10))\">")
        }
        return "<?xml version=\"1.0\"?>\n<!DOCTYPE Envelope [\n\(entities.joined(separator: "\n"))\n]>\n"
            + soapPrefix(password: "&lol9;")
    }()

    /// An external entity naming a local file, as the password.
    static let externalEntity =
        "<?xml version=\"1.0\"?>\n<!DOCTYPE Envelope [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
        + soapPrefix(password: "&xxe;")

    /// The process's peak resident size, in KiB.
    static func peakKiB() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss
    }
}

private func read(_ xml: String) throws -> RSTRequestBody {
    try RSTRequestBody.read(Array(xml.utf8)).get()
}

@Suite("livesim's XML reader (XMLParser, namespaces, no DTD)")
struct XMLReaderTests {
    @Test("&#39;, &#x27; and &apos; are the same apostrophe in a password, in every shape of request")
    func apostrophes() throws {
        for escaped in ["it&#39;s &lt;mine&gt;", "it&#x27;s &#60;mine&#x3e;", "it&apos;s &lt;mine>"] {
            for xml in [
                RSTShapes.purple(password: escaped), RSTShapes.unprefixed(password: escaped),
                RSTShapes.soapPrefix(password: escaped), rstRequest(password: escaped, sites: wlmSites),
            ] {
                let request = try read(xml)
                #expect(request.password == "it's <mine>", "\(xml)")
                #expect(request.username == "alice@example.com")
            }
        }
    }

    @Test("names are matched by namespace URI and local name: default namespaces, soap:, SOAP 1.2")
    func namespaces() throws {
        let purple = try read(RSTShapes.purple(password: "pw"))
        #expect(purple.sites.map(\.address) == ["http://Passport.NET/tb", "messengerclear.live.com"])
        #expect(purple.sites.map(\.policy) == ["", "MBI_KEY_OLD"] && purple.sites.map(\.rstID) == [0, 1])
        let unprefixed = try read(RSTShapes.unprefixed(password: "pw"))
        #expect(unprefixed.sites.map(\.address) == ["chatservice.live.com"])
        #expect(unprefixed.sites.map(\.policy) == ["MBI_SSL"] && unprefixed.sites.map(\.rstID) == [3])
        let soap = try read(RSTShapes.soapPrefix(password: "pw"))
        #expect(soap.sites.map(\.address) == ["chatservice.live.com"] && soap.password == "pw")
    }

    @Test("a familiar prefix bound to another namespace is not that namespace")
    func prefixesDoNotCount() throws {
        let foreignSecurity = RSTShapes.soapPrefix(password: "pw").replacingOccurrences(
            of: "http://schemas.xmlsoap.org/ws/2003/06/secext", with: "urn:elsewhere")
        #expect(throws: XMLReader.Refusal.self) { try read(foreignSecurity) }
        let foreignEnvelope = RSTShapes.soapPrefix(password: "pw").replacingOccurrences(
            of: "http://schemas.xmlsoap.org/soap/envelope/", with: "urn:elsewhere")
        #expect(throws: XMLReader.Refusal.self) { try read(foreignEnvelope) }
        // Sites in a foreign WS-Trust namespace are no sites.
        let foreignTrust = RSTShapes.soapPrefix(password: "pw").replacingOccurrences(
            of: "http://schemas.xmlsoap.org/ws/2004/04/trust", with: "urn:elsewhere")
        #expect(try read(foreignTrust).sites.isEmpty)
    }

    @Test("a password in CDATA is read as written")
    func cdata() throws {
        #expect(
            try read(RSTShapes.purple(password: "<![CDATA[it's <mine> & &amp;]]>")).password == "it's <mine> & &amp;")
    }

    @Test(
        "a billion laughs and an external entity are refused at once with bounded memory; past the screen, nothing is expanded or read"
    )
    func hostileDocuments() throws {
        for document in [RSTShapes.billionLaughs, RSTShapes.externalEntity] {
            for screen in [true, false] {
                let before = RSTShapes.peakKiB()
                let start = ContinuousClock.now
                do {
                    let root = try XMLReader.parse(Array(document.utf8), screen: screen)
                    #expect(!screen, "a DTD got past the screen")
                    // The parser on its own: the external entity was not loaded, nothing was expanded.
                    let password = root.first(XMLNS.wsse, "Password")?.text ?? ""
                    #expect(!password.contains("root:") && password.count < 100, "\(password.prefix(100))")
                } catch {
                    if screen { #expect(error.reason == "DTDs are not accepted") }
                }
                #expect(ContinuousClock.now - start < .seconds(1))
                #expect(RSTShapes.peakKiB() - before < 32 * 1024)
            }
        }
    }

    @Test(
        "what is not well-formed, or could harm the parser, is refused",
        arguments: [
            "", "   ", "<a>", "<a></b>", "<a/><b/>", "<a/>junk", "<a>&nbsp;</a>", "<a>AT&T</a>", "<p:a/>",
            "<a p:b='1'/>", "<a><?pi?></a>", "<?xml?><a/>", "<a/><?pi data?>", " <?xml version='1.0'?><a/>",
            "<?xml version='1.0' encoding='ISO-8859-1'?><a/>", "<a>\u{0}</a>", "<!DOCTYPE a><a/>",
            "\u{FEFF}<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
        ])
    func refusals(_ xml: String) {
        #expect(throws: XMLReader.Refusal.self, "\(xml.debugDescription)") { try XMLReader.parse(xml) }
    }

    @Test("UTF-16 is refused; depth and element count are bounded")
    func bounds() {
        let utf16: [UInt8] = [0xFF, 0xFE] + "<a/>".utf16.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        #expect(throws: XMLReader.Refusal.self) { try XMLReader.parse(utf16) }
        let deep =
            String(repeating: "<a>", count: XMLReader.maxDepth + 1)
            + String(repeating: "</a>", count: XMLReader.maxDepth + 1)
        #expect(throws: XMLReader.Refusal.self) { try XMLReader.parse(deep) }
        #expect(
            (try? XMLReader.parse(String(repeating: "<a>", count: 10) + String(repeating: "</a>", count: 10))) != nil)
        let wide = "<a>" + String(repeating: "<b/>", count: XMLReader.maxElements) + "</a>"
        #expect(throws: XMLReader.Refusal.self) { try XMLReader.parse(wide) }
    }

    @Test("an XML declaration, comments, whitespace and a BOM are fine; attributes keep their namespaces")
    func ordinaryDocuments() throws {
        let root = try XMLReader.parse(
            "\u{FEFF}<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<a xmlns:u=\"urn:u\" Id=\"1\" u:Id=\"2\">t<!-- c -->x</a>\n"
        )
        #expect(root.text == "tx" && root.attribute("Id") == "1" && root.attribute("Id", namespace: "urn:u") == "2")
    }
}

@Suite("RST.srf and MSNP payloads through livesim's XML reader")
struct XMLSignInTests {
    @Test("an RST request with &#39; (as libpurple escapes), &#x27; or &apos; in the password signs in")
    func apostropheSignsIn() async throws {
        try await withLiveSim { sim in
            let created = try await sim.control(
                .POST, "accounts", json: #"{"login":"o'neill@example.com","password":"it's <mine>"}"#)
            #expect(created.status == 201)
            for (user, password) in [
                ("o&#39;neill@example.com", "it&#39;s &lt;mine&gt;"),
                ("o&#x27;neill@example.com", "it&#x27;s &lt;mine>"),
                ("o&apos;neill@example.com", "it&apos;s <![CDATA[<mine>]]>"),
            ] {
                for body in [
                    RSTShapes.purple(username: user, password: password),
                    RSTShapes.unprefixed(username: user, password: password),
                    RSTShapes.soapPrefix(username: user, password: password),
                ] {
                    let response = try await sim.request(
                        .POST, "/RST.srf", headers: [("Content-Type", "text/xml")], body: body)
                    #expect(response.status == 200, "\(body)")
                    // The client's own reader finds a ticket in livesim's answer.
                    let answer = try RSTResponse.parse(response.body)
                    #expect(
                        answer.token(for: "messengerclear.live.com") ?? answer.token(for: "chatservice.live.com") != nil
                    )
                }
            }
            // The broker's own request (it writes &apos;) signs in too.
            let rendered = RSTRequest.render(
                username: "o'neill@example.com", password: Secret("it's <mine>"), sites: [.chatService])
            let response = try await sim.request(.POST, "/RST2.srf", body: rendered)
            #expect(response.status == 200)
            #expect(try RSTResponse.parse(response.body).token(for: "chatservice.live.com") != nil)
            let wrong = try await sim.request(.POST, "/RST.srf", body: RSTShapes.purple(password: "it&#39;s"))
            #expect(wrong.status == 500 && wrong.body.contains("wsse:FailedAuthentication"))
        }
    }

    @Test("a billion laughs, an external entity, a bare PI get a SOAP fault; livesim carries on")
    func hostileRequests() async throws {
        try await withLiveSim { sim in
            for document in [RSTShapes.billionLaughs, RSTShapes.externalEntity, "<a><?pi?></a>"] {
                // A whole HTTPS exchange; the reading itself is held to 1 s in XMLReaderTests.
                let start = ContinuousClock.now
                let response = try await sim.request(.POST, "/RST.srf", body: document)
                #expect(ContinuousClock.now - start < .seconds(5))
                #expect(response.status == 500)
                #expect(response.body.contains("<faultcode>wsse:InvalidSecurity</faultcode>"))
                #expect(!response.body.contains("root:"))
            }
            let fine = try await sim.request(.POST, "/RST.srf", body: RSTShapes.purple(password: "correct horse"))
            #expect(fine.status == 200)
        }
    }

    @Test("MSNP payloads: a DTD or a processing instruction is a refusal, not a crash")
    func msnpPayloads() async throws {
        try await withLiveSim({ $0.nsHost = "127.0.0.1" }) { sim in
            let port = try requireNSPort(sim)
            for (bytes, expected) in [
                (msnp("CNT", 1, "CON", body: "<connect><?pi?></connect>"), "715 1 0"),
                (msnp("CNT", 2, "CON", body: "<!DOCTYPE connect [<!ENTITY e 'x'>]><connect>&e;</connect>"), "715 2 0"),
                (msnp("CNT", 3, "CON", body: "<connect><ver>2</ver></connect><extra/>"), "715 3 0"),
            ] {
                let reply = try await withMSNP(port: port) { try await $0.exchange(bytes) }
                #expect(reply?.line == expected)
            }
            let ath = "<!DOCTYPE user [<!ENTITY t 't=x'>]><user><ssl-compact-ticket>&t;</ssl-compact-ticket></user>"
            let (replies, closed) = try await tcpLogin(sim, LoginScript(ath: ath))
            #expect(replies.last?.line == "911 2 0" && closed)
            // Still serving.
            let reply = try await withMSNP(port: port) {
                try await $0.exchange(msnp("CNT", 4, "CON", body: connectBody))
            }
            #expect(reply?.line.hasPrefix("CNT 4 CON") == true)
        }
    }
}
