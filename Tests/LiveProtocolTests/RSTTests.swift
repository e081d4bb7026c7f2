import BrokerCore
import Foundation
import LiveProtocol
import Testing

@Suite("RST request")
struct RSTRequestTests {
    /// Collapses the whitespace between tags, so layout does not matter.
    static func normalized(_ xml: String) -> String {
        var out = ""
        var pending = ""
        for ch in xml {
            if ch.isWhitespace {
                pending.append(ch)
                continue
            }
            if !pending.isEmpty {
                if !(out.hasSuffix(">") && ch == "<") { out += " " }
                pending = ""
            }
            out.append(ch)
        }
        return out
    }

    @Test func chatServiceRequestIsTheSeedEnvelope() {
        let seed = """
            <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"
               xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext"
               xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy"
               xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing"
               xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust"
               xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL">
               <Header>
                   <wsse:Security>
                       <wsse:UsernameToken Id="user">
                           <wsse:Username>username@hotmail.com</wsse:Username>
                           <wsse:Password>password-here</wsse:Password>
                       </wsse:UsernameToken>
                   </wsse:Security>
               </Header>
               <Body>
                   <ps:RequestMultipleSecurityTokens Id="RSTS">
                       <wst:RequestSecurityToken Id="RST0">
                           <wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>
                           <wsp:AppliesTo>
                               <wsa:EndpointReference>
                                   <wsa:Address>chatservice.live.com</wsa:Address>
                               </wsa:EndpointReference>
                           </wsp:AppliesTo>
                           <wsse:PolicyReference URI="MBI_SSL"></wsse:PolicyReference>
                       </wst:RequestSecurityToken>
                   </ps:RequestMultipleSecurityTokens>
               </Body>
            </Envelope>
            """
        let rendered = RSTRequest.render(
            username: "username@hotmail.com", password: Secret("password-here"), sites: [.chatService])
        #expect(Self.normalized(rendered) == Self.normalized(seed))
    }

    @Test func sitesAreNumberedInOrder() {
        let rendered = RSTRequest.render(
            username: "u@example.com", password: Secret("p"),
            sites: [
                RSTSite(address: "http://Passport.NET/tb", policy: ""),
                RSTSite(address: "messengerclear.live.com", policy: "MBI_KEY_OLD"),
                .chatService,
            ])
        let ids = rendered.components(separatedBy: "<wst:RequestSecurityToken Id=\"").dropFirst().map { $0.prefix(4) }
        #expect(ids == ["RST0", "RST1", "RST2"])
        let rst0 = rendered.components(separatedBy: "Id=\"RST1\"")[0]
        #expect(rst0.contains("<wsa:Address>http://Passport.NET/tb</wsa:Address>"))
        #expect(!rst0.contains("PolicyReference")) // no policy for the tb site
        #expect(rendered.contains(#"<wsse:PolicyReference URI="MBI_KEY_OLD"></wsse:PolicyReference>"#))
        #expect(rendered.components(separatedBy: "<wsse:PolicyReference").count == 3)
    }

    @Test func credentialsAreXMLEscaped() {
        let rendered = RSTRequest.render(
            username: "a&b@example.com", password: Secret(#"p<&>"'w"#), sites: [.chatService])
        #expect(rendered.contains("<wsse:Username>a&amp;b@example.com</wsse:Username>"))
        #expect(rendered.contains("<wsse:Password>p&lt;&amp;&gt;&quot;&apos;w</wsse:Password>"))
        #expect(!rendered.contains("p<&>"))
    }
}

@Suite("RST response")
struct RSTResponseTests {
    static func fixture(_ name: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: name, withExtension: "xml", subdirectory: "Fixtures"))
        return try String(contentsOf: url, encoding: .utf8)
    }

    /// The ticket as written in the fixture, unescaped by hand, to compare with the parser's.
    static func rawTicket(_ xml: String, id: String) throws -> String {
        let afterOpen = try #require(xml.components(separatedBy: "Id=\"\(id)\">").dropFirst().first)
        let text = try #require(afterOpen.components(separatedBy: "</wsse:BinarySecurityToken>").first)
        return text.replacingOccurrences(of: "&amp;", with: "&")
    }

    static func utc(_ y: Int, _ mo: Int, _ d: Int, _ h: Int, _ mi: Int, _ s: Int) -> Date {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: DateComponents(year: y, month: mo, day: d, hour: h, minute: mi, second: s))!
    }

    @Test(arguments: [
        ("RST.srf-response", 19, "ETgV8tZaZz8MYV6nwVKKdVGznMDeLTtt"),
        ("RST2.srf-response", 27, "gzml5DUZNNusLs/FLbDSrvt6AN+xYeFu"),
    ])
    func revivalFixture(name: String, second: Int, proofKey: String) throws {
        let xml = try Self.fixture(name)
        let response = try RSTResponse.parse(xml)
        guard case .tokens(let tokens) = response else {
            Issue.record("expected tokens, got \(response)")
            return
        }
        // The encrypted Passport.NET/tb token has no compact ticket and is not listed.
        #expect(tokens.map(\.address) == ["messengerclear.live.com", "contacts.msn.com", "chatservice.live.com"])
        #expect(tokens.map(\.id) == ["Compact2", "Compact3", "Compact4"])
        for token in tokens {
            let expected = try Self.rawTicket(xml, id: token.id)
            #expect(token.ticket.exposed == expected)
            #expect(token.ticket.exposed.hasPrefix("t="))
            #expect(token.ticket.exposed.hasSuffix("&p="))
            #expect(token.created == Self.utc(2026, 11, 27, 6, 52, second))
            #expect(token.expires == Self.utc(2026, 11, 28, 6, 52, second))
        }
        #expect(response.token(for: "messengerclear.live.com")?.binarySecret?.exposed == proofKey)
        #expect(response.token(for: "contacts.msn.com")?.binarySecret == nil)
        #expect(response.token(for: "chatservice.live.com")?.binarySecret == nil)
        #expect(response.token(for: "ChatService.Live.com")?.id == "Compact4")
        #expect(response.token(for: "http://Passport.NET/tb") == nil)
    }

    @Test func tokensAreMatchedByAddressNotByID() throws {
        let xml = """
            <soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
            <!-- a comment -->
            <t:RequestSecurityTokenResponseCollection xmlns:t="http://schemas.xmlsoap.org/ws/2004/04/trust" \
            xmlns:p="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:a="http://schemas.xmlsoap.org/ws/2004/03/addressing" \
            xmlns:u="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" \
            xmlns:s="http://schemas.xmlsoap.org/ws/2003/06/secext">
            \t<t:RequestSecurityTokenResponse><p:AppliesTo><a:EndpointReference><a:Address>contacts.msn.com</a:Address></a:EndpointReference></p:AppliesTo>
            \t\t<t:LifeTime><u:Created>2017-05-26T03:04:57.250Z</u:Created><u:Expires>2017-05-26T05:13:16+02:00</u:Expires></t:LifeTime>
            \t\t<t:RequestedSecurityToken><s:BinarySecurityToken Id="Compact0"><![CDATA[t=cdata&p=]]></s:BinarySecurityToken></t:RequestedSecurityToken>
            \t</t:RequestSecurityTokenResponse>
            \t<t:RequestSecurityTokenResponse><p:AppliesTo><a:EndpointReference><a:Address>chatservice.live.com</a:Address></a:EndpointReference></p:AppliesTo>
            \t\t<t:RequestedSecurityToken><s:BinarySecurityToken Id="Compact1">
            \t\t\tt=abc&amp;d&#x3D;1&#61;&amp;p=
            \t\t</s:BinarySecurityToken></t:RequestedSecurityToken>
            \t</t:RequestSecurityTokenResponse>
            </t:RequestSecurityTokenResponseCollection></soap:Body></soap:Envelope>
            """
        let response = try RSTResponse.parse(xml)
        let chat = try #require(response.token(for: "chatservice.live.com"))
        #expect(chat.id == "Compact1")
        #expect(chat.ticket.exposed == "t=abc&d=1=&p=")
        #expect(chat.created == nil && chat.expires == nil)
        let contacts = try #require(response.token(for: "contacts.msn.com"))
        #expect(contacts.ticket.exposed == "t=cdata&p=")
        #expect(contacts.created == Self.utc(2017, 5, 26, 3, 4, 57).addingTimeInterval(0.25))
        #expect(contacts.expires == Self.utc(2017, 5, 26, 3, 13, 16))
    }

    @Test(arguments: [
        "",
        "<html><body>502 Bad Gateway</body></html>",
        #"<S:Envelope xmlns:S="x"><S:Body></S:Body></S:Envelope>"#,
        #"<S:Envelope xmlns:S="x"><S:Header/></S:Envelope>"#,
        #"<S:Envelope xmlns:S="x"><S:Body><wst:RequestSecurityTokenResponseCollection>"#,
        #"<S:Envelope xmlns:S="x"><S:Body><a></b></S:Body></S:Envelope>"#,
        #"<S:Envelope xmlns:S="x"><S:Body><wst:RequestSecurityTokenResponse><wsse:BinarySecurityToken Id="Compact0">t=1&amp;p=</wsse:BinarySecurityToken></wst:RequestSecurityTokenResponse></S:Body></S:Envelope>"#,
    ])
    func malformedAnswersThrowUpstreamError(_ xml: String) {
        do {
            let result = try RSTResponse.parse(xml)
            Issue.record("expected an error, got \(result)")
        } catch {
            #expect(error.code == .upstreamError)
        }
    }

    @Test func truncatedFixtureThrows() throws {
        let xml = try Self.fixture("RST2.srf-response")
        let truncated = String(xml.prefix(xml.count * 2 / 3))
        #expect(throws: BrokerError.self) { try RSTResponse.parse(truncated) }
    }
}

@Suite("RST faults")
struct RSTFaultTests {
    /// SOAP 1.1, as RST.srf (and the revival server, with HTTP 200) answers a wrong password.
    static let soap11BadPassword = """
        <?xml version="1.0" encoding="utf-8" ?>
        <S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">
        \t<S:Header>
        \t\t<psf:pp xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
        \t\t\t<psf:serverVersion>1</psf:serverVersion>
        \t\t\t<psf:authstate>0x80048800</psf:authstate>
        \t\t\t<psf:reqstatus>0x80048823</psf:reqstatus>
        \t\t\t<psf:serverInfo Path="Live1" ServerTime="2017-05-26T03:04:57Z">XYZPPLOGN1A23 2017.09.28.12.44.07</psf:serverInfo>
        \t\t\t<psf:cookies/>
        \t\t\t<psf:response/>
        \t\t</psf:pp>
        \t</S:Header>
        \t<S:Body>
        \t\t<S:Fault>
        \t\t\t<faultcode>wsse:FailedAuthentication</faultcode>
        \t\t\t<faultstring>Authentication Failure</faultstring>
        \t\t</S:Fault>
        \t</S:Body>
        </S:Envelope>
        """

    /// SOAP 1.2, the RST2.srf style: Code/Subcode, Reason/Text, psf:error in Detail.
    static let soap12BadPassword = """
        <?xml version="1.0" encoding="utf-8" ?><S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" \
        xmlns:wst="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">\
        <S:Header><psf:pp><psf:serverVersion>1</psf:serverVersion><psf:authstate>0x80048800</psf:authstate>\
        <psf:reqstatus>0x80048821</psf:reqstatus></psf:pp></S:Header>\
        <S:Body><S:Fault><S:Code><S:Value>S:Sender</S:Value><S:Subcode><S:Value>wst:FailedAuthentication</S:Value></S:Subcode></S:Code>\
        <S:Reason><S:Text xml:lang="en-US">Authentication Failure</S:Text></S:Reason>\
        <S:Detail><psf:error><psf:value>0x80048821</psf:value><psf:internalerror><psf:code>0x80041012</psf:code>\
        <psf:text>The entered and stored passwords do not match.&#x000D;&#x000A;</psf:text></psf:internalerror></psf:error></S:Detail>\
        </S:Fault></S:Body></S:Envelope>
        """

    static func fault(_ xml: String) throws -> RSTFault {
        let response = try RSTResponse.parse(xml)
        guard case .fault(let fault) = response else {
            Issue.record("expected a fault, got \(response)")
            throw BrokerError(.internalError, "not a fault")
        }
        return fault
    }

    @Test func soap11WrongPassword() throws {
        let fault = try Self.fault(Self.soap11BadPassword)
        #expect(fault.faultcode == "wsse:FailedAuthentication")
        #expect(fault.faultstring == "Authentication Failure")
        #expect(fault.reqstatus == "0x80048823")
        #expect(fault.errorValue == nil)
        #expect(fault.redirectURL == nil)
        #expect(fault.kind == .badCredentials)
    }

    /// Escargot's authentication-failure template (HTTP 200): the fault sits straight under the
    /// envelope, with no Body.
    static let escargotAuthFailed = """
        <?xml version="1.0" encoding="utf-8" ?>
        <S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
        	<S:Header>
        		<psf:pp xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
        			<psf:serverVersion>1</psf:serverVersion>
        			<psf:authstate>0x80048800</psf:authstate>
        			<psf:reqstatus>0x80048823</psf:reqstatus>
        			<psf:serverInfo Path="Live1" RollingUpgradeState="ExclusiveNew" LocVersion="0" ServerTime="2026-12-03T10:00:00Z">XYZPPLOGN1A23 2017.09.28.12.44.07</psf:serverInfo>
        			<psf:cookies/>
        			<psf:response/>
        		</psf:pp>
        	</S:Header>
        	<S:Fault>
        		<faultcode>wsse:FailedAuthentication</faultcode>
        		<faultstring>Authentication Failure</faultstring>
        	</S:Fault>
        </S:Envelope>
        """

    @Test func escargotWrongPasswordWithoutBody() throws {
        let fault = try Self.fault(Self.escargotAuthFailed)
        #expect(fault.faultcode == "wsse:FailedAuthentication")
        #expect(fault.faultstring == "Authentication Failure")
        #expect(fault.kind == .badCredentials)
    }

    @Test func soap12WrongPassword() throws {
        let fault = try Self.fault(Self.soap12BadPassword)
        #expect(fault.faultcode == "wst:FailedAuthentication")
        #expect(fault.faultstring == "Authentication Failure")
        #expect(fault.reqstatus == "0x80048821")
        #expect(fault.errorValue == "0x80048821")
        #expect(fault.internalErrorText == "The entered and stored passwords do not match.")
        #expect(fault.kind == .badCredentials)
    }

    @Test func redirectFault() throws {
        let xml = """
            <S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header><psf:pp xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">\
            <psf:reqstatus>0x0</psf:reqstatus></psf:pp></S:Header><S:Body><S:Fault><faultcode>psf:Redirect</faultcode>\
            <psf:redirectUrl xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">https://msnia.login.live.com/pp1600/RST.srf</psf:redirectUrl>\
            <faultstring>Authentication Failure</faultstring></S:Fault></S:Body></S:Envelope>
            """
        let fault = try Self.fault(xml)
        #expect(fault.faultcode == "psf:Redirect")
        #expect(fault.redirectURL == "https://msnia.login.live.com/pp1600/RST.srf")
        #expect(fault.kind == .redirect("https://msnia.login.live.com/pp1600/RST.srf"))
    }

    @Test func profileAccrualIsNotBadCredentials() throws {
        let xml = Self.soap11BadPassword.replacingOccurrences(
            of: "<faultstring>Authentication Failure</faultstring>",
            with: "<faultstring>Profile accrual is required</faultstring>")
        let fault = try Self.fault(xml)
        #expect(fault.reqstatus == "0x80048823")
        #expect(fault.kind == .profileAccrualRequired)
    }

    @Test func otherFailures() throws {
        let unknownStatus = Self.soap11BadPassword.replacingOccurrences(of: "0x80048823", with: "0x800488ee")
        #expect(try Self.fault(unknownStatus).kind == .other)
        let otherCode = Self.soap11BadPassword.replacingOccurrences(
            of: "wsse:FailedAuthentication", with: "wsse:InvalidSecurity")
        #expect(try Self.fault(otherCode).kind == .other)
        let redirectWithoutURL = Self.soap11BadPassword.replacingOccurrences(
            of: "wsse:FailedAuthentication", with: "psf:Redirect")
        #expect(try Self.fault(redirectWithoutURL).kind == .other)
    }

    @Test func kindIsComputedFromTheFields() {
        #expect(
            RSTFault(
                faultcode: "FailedAuthentication", faultstring: nil, reqstatus: nil, errorValue: "0X80048821",
                redirectURL: nil
            ).kind
                == .badCredentials)
        // A revival server may send the fault code alone.
        #expect(
            RSTFault(
                faultcode: "wsse:FailedAuthentication", faultstring: nil, reqstatus: nil, errorValue: nil,
                redirectURL: nil
            ).kind
                == .badCredentials)
        #expect(
            RSTFault(
                faultcode: "wsse:FailedAuthentication", faultstring: nil, reqstatus: "0x800488ee", errorValue: nil,
                redirectURL: nil
            ).kind
                == .other)
    }
}
