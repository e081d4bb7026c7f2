import BrokerCore
import Foundation
import LiveProtocol
import Testing

/// RST.srf answers written with other templates than the captures': other prefixes, default
/// namespaces, CDATA. They read the same, because names are matched by namespace URI.
@Suite("RST answers: namespaces, prefixes, CDATA")
struct RSTNamespaceTests {
    static let trust = "http://schemas.xmlsoap.org/ws/2004/04/trust"
    static let utility = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"

    /// One token for chatservice.live.com, with no prefix anywhere: every element in a default namespace.
    static let defaultNamespaces = """
        <?xml version="1.0" encoding="utf-8"?>
        <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body>
        <RequestSecurityTokenResponseCollection xmlns="\(trust)"><RequestSecurityTokenResponse>
        <TokenType>urn:passport:compact</TokenType>
        <AppliesTo xmlns="http://schemas.xmlsoap.org/ws/2002/12/policy"><EndpointReference \
        xmlns="http://schemas.xmlsoap.org/ws/2004/03/addressing"><Address>chatservice.live.com</Address></EndpointReference></AppliesTo>
        <LifeTime><Created xmlns="\(utility)">2026-11-27T06:52:19Z</Created><Expires xmlns="\(utility)">2026-11-28T06:52:19Z</Expires></LifeTime>
        <RequestedSecurityToken><BinarySecurityToken xmlns="http://schemas.xmlsoap.org/ws/2003/06/secext" \
        Id="Compact1">t=abc&#x2B;/&#61;&amp;p=</BinarySecurityToken></RequestedSecurityToken>
        <RequestedProofToken><BinarySecret>c2VjcmV0</BinarySecret></RequestedProofToken>
        </RequestSecurityTokenResponse></RequestSecurityTokenResponseCollection></Body></Envelope>
        """

    @Test("a default namespace and no prefixes at all")
    func defaultNamespace() throws {
        let token = try #require(try RSTResponse.parse(Self.defaultNamespaces).token(for: "chatservice.live.com"))
        #expect(token.id == "Compact1")
        #expect(token.ticket.exposed == "t=abc+/=&p=")
        #expect(token.binarySecret?.exposed == "c2VjcmV0")
        #expect(token.created == Date(timeIntervalSince1970: 1_795_762_339))
        #expect(token.expires == Date(timeIntervalSince1970: 1_795_848_739))
    }

    @Test("soap: (and any other prefix) instead of S:, on the captured answers")
    func otherPrefixes() throws {
        for name in ["RST.srf-response", "RST2.srf-response"] {
            let captured = try RSTResponseTests.fixture(name)
            let renamed =
                captured
                .replacingOccurrences(of: "<S:", with: "<soap:").replacingOccurrences(of: "</S:", with: "</soap:")
                .replacingOccurrences(of: "xmlns:S=", with: "xmlns:soap=").replacingOccurrences(
                    of: " S:", with: " soap:"
                )
                .replacingOccurrences(of: "wst:", with: "trust:").replacingOccurrences(
                    of: "xmlns:wst=", with: "xmlns:trust="
                )
                .replacingOccurrences(of: "wsse:", with: "sec:").replacingOccurrences(
                    of: "xmlns:wsse=", with: "xmlns:sec=")
            #expect(renamed.contains("<soap:Envelope") && renamed.contains("<trust:RequestSecurityTokenResponse>"))
            #expect(try RSTResponse.parse(renamed) == RSTResponse.parse(captured))
        }
    }

    @Test("a fault in a default SOAP namespace, its faultcode in it too")
    func defaultNamespaceFault() throws {
        let xml = """
            <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Header><pp \
            xmlns="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"><reqstatus>0x80048823</reqstatus></pp></Header>\
            <Body><Fault><faultcode>wsse:FailedAuthentication</faultcode><faultstring>It&apos;s not &#39;right&#x27;\
            </faultstring></Fault></Body></Envelope>
            """
        guard case .fault(let fault) = try RSTResponse.parse(xml) else {
            Issue.record("expected a fault")
            return
        }
        #expect(fault.reqstatus == "0x80048823" && fault.kind == .badCredentials)
        #expect(fault.faultstring == "It's not 'right'")
    }

    @Test("a ticket in CDATA")
    func cdataTicket() throws {
        let xml = Self.defaultNamespaces.replacingOccurrences(
            of: "t=abc&#x2B;/&#61;&amp;p=", with: "<![CDATA[t=abc+/=&p=]]>")
        #expect(try RSTResponse.parse(xml).token(for: "chatservice.live.com")?.ticket.exposed == "t=abc+/=&p=")
    }

    @Test("a familiar prefix bound to an unknown namespace is not that namespace")
    func prefixesDoNotCount() throws {
        let foreignTrust = Self.defaultNamespaces.replacingOccurrences(of: Self.trust, with: "urn:not-trust")
        #expect(throws: BrokerError.self) { try RSTResponse.parse(foreignTrust) }
        let foreignEnvelope = RSTFaultTests.soap11BadPassword.replacingOccurrences(
            of: "http://schemas.xmlsoap.org/soap/envelope/", with: "urn:not-soap")
        #expect(throws: BrokerError.self) { try RSTResponse.parse(foreignEnvelope) }
        // The token's wsse: prefix bound elsewhere: no BinarySecurityToken, so no token.
        let foreignSecurity = try RSTResponseTests.fixture("RST.srf-response").replacingOccurrences(
            of: #"xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext""#, with: #"xmlns:wsse="urn:elsewhere""#)
        #expect(try RSTResponse.parse(foreignSecurity) == .tokens([]))
    }

    @Test("an undefined entity or a DTD in an answer is an upstream error, not a ticket")
    func refusals() {
        for xml in [
            Self.defaultNamespaces.replacingOccurrences(of: "&amp;p=", with: "&p;"),
            Self.defaultNamespaces.replacingOccurrences(of: "&amp;p=", with: "&p="),
            "<!DOCTYPE Envelope>" + Self.defaultNamespaces.drop { $0 != "\n" },
        ] {
            do {
                let result = try RSTResponse.parse(xml)
                Issue.record("expected an error, got \(result)")
            } catch {
                #expect(error.code == .upstreamError)
            }
        }
    }
}
