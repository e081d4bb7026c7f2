import BrokerCore
import Foundation

/// The SOAP `RequestMultipleSecurityTokens` envelope of the seed (MSNP15 SSO style).
package enum RSTRequest {
    package static let contentType = "text/xml; charset=utf-8"

    /// Tokens get Ids `RST0`, `RST1`, ... in order. Every value is XML-escaped.
    package static func render(username: String, password: Secret, sites: [RSTSite]) -> String {
        var lines = [
            #"<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/""#,
            #"   xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext""#,
            #"   xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy""#,
            #"   xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing""#,
            #"   xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust""#,
            #"   xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL">"#,
            "   <Header>",
            "       <wsse:Security>",
            #"           <wsse:UsernameToken Id="user">"#,
            "               <wsse:Username>\(xmlEscape(username))</wsse:Username>",
            "               <wsse:Password>\(xmlEscape(password.exposed))</wsse:Password>",
            "           </wsse:UsernameToken>",
            "       </wsse:Security>",
            "   </Header>",
            "   <Body>",
            #"       <ps:RequestMultipleSecurityTokens Id="RSTS">"#,
        ]
        for (index, site) in sites.enumerated() {
            lines += [
                "           <wst:RequestSecurityToken Id=\"RST\(index)\">",
                "               <wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>",
                "               <wsp:AppliesTo>",
                "                   <wsa:EndpointReference>",
                "                       <wsa:Address>\(xmlEscape(site.address))</wsa:Address>",
                "                   </wsa:EndpointReference>",
                "               </wsp:AppliesTo>",
            ]
            if !site.policy.isEmpty {
                lines.append(
                    "               <wsse:PolicyReference URI=\"\(xmlEscape(site.policy))\"></wsse:PolicyReference>")
            }
            lines.append("           </wst:RequestSecurityToken>")
        }
        lines += [
            "       </ps:RequestMultipleSecurityTokens>",
            "   </Body>",
            "</Envelope>",
        ]
        return lines.joined(separator: "\n")
    }
}

/// One issued ticket, identified by the site it applies to.
package struct RSTToken: Sendable, Hashable {
    /// The `wsa:Address` it was issued for.
    package var address: String
    /// The `BinarySecurityToken` Id (`Compact2`...). Not a key: servers count differently.
    package var id: String
    /// The compact ticket, XML-unescaped (`t=...&p=`).
    package var ticket: Secret
    package var created: Date?
    package var expires: Date?
    /// The proof key (`wst:BinarySecret`), sent only for some sites (messengerclear.live.com).
    package var binarySecret: Secret?

    package init(address: String, id: String, ticket: Secret, created: Date?, expires: Date?, binarySecret: Secret?) {
        self.address = address
        self.id = id
        self.ticket = ticket
        self.created = created
        self.expires = expires
        self.binarySecret = binarySecret
    }
}

/// A SOAP fault from RST.srf, in either SOAP 1.1 (`faultcode`) or SOAP 1.2 (`Code/Value`) form.
package struct RSTFault: Sendable, Hashable {
    package enum Kind: Sendable, Hashable {
        /// `psf:Redirect`: send the same request to this URL.
        case redirect(String)
        /// Wrong login or password.
        case badCredentials
        /// The account must be completed in a browser first.
        case profileAccrualRequired
        case other
    }

    /// e.g. `wsse:FailedAuthentication`, `psf:Redirect` (SOAP 1.2: the innermost Subcode value).
    package var faultcode: String?
    package var faultstring: String?
    /// `psf:reqstatus`, e.g. `0x80048823`.
    package var reqstatus: String?
    /// `psf:error/psf:value`, e.g. `0x80048821`.
    package var errorValue: String?
    /// `psf:error/psf:internalerror/psf:text`, the server's detailed reason.
    package var internalErrorText: String?
    package var redirectURL: String?

    package init(
        faultcode: String?, faultstring: String?, reqstatus: String?, errorValue: String?,
        internalErrorText: String? = nil, redirectURL: String?
    ) {
        self.faultcode = faultcode
        self.faultstring = faultstring
        self.reqstatus = reqstatus
        self.errorValue = errorValue
        self.internalErrorText = internalErrorText
        self.redirectURL = redirectURL
    }

    package var kind: Kind {
        let code = faultcode.map { $0.split(separator: ":").last.map(String.init) ?? $0 }?.lowercased()
        if let redirectURL, !redirectURL.isEmpty, code == "redirect" || code == nil || code == "" {
            return .redirect(redirectURL)
        }
        let texts = [faultstring, internalErrorText].compactMap { $0?.lowercased() }
        if texts.contains(where: { $0.contains("profile accrual") }) { return .profileAccrualRequired }
        // Microsoft's service gave the status codes; revival servers may send the fault code
        // alone, which means the same. A FailedAuthentication with another status is not a
        // wrong password.
        if code == "failedauthentication",
            Self.same(reqstatus, "0x80048823") || Self.same(errorValue, "0x80048821")
                || (reqstatus ?? "").isEmpty && (errorValue ?? "").isEmpty
        {
            return .badCredentials
        }
        return .other
    }

    private static func same(_ hex: String?, _ expected: String) -> Bool {
        hex?.trimmingASCIIWhitespace().lowercased() == expected
    }
}

/// The answer of RST.srf or RST2.srf.
package enum RSTResponse: Sendable, Hashable {
    case tokens([RSTToken])
    case fault(RSTFault)

    /// The token issued for `address` (case-insensitive), when the answer has one.
    package func token(for address: String) -> RSTToken? {
        guard case .tokens(let tokens) = self else { return nil }
        return tokens.first { $0.address.lowercased() == address.lowercased() }
    }

    /// Tokens are taken from every `RequestSecurityTokenResponse` holding a
    /// `BinarySecurityToken`; the encrypted legacy token of `http://Passport.NET/tb` has none
    /// and is skipped. Throws `.upstreamError` for anything that is not a SOAP envelope with
    /// either a fault or a token collection. Names are matched by namespace URI and local name
    /// (`SOAPNames`), whatever prefixes the server's templates use.
    package static func parse(_ xml: String) throws(BrokerError) -> RSTResponse {
        let root: MiniXML.Element
        do {
            root = try MiniXML.parse(xml)
        } catch {
            throw BrokerError(.upstreamError, "malformed RST response: \(error.reason) at byte \(error.offset)")
        }
        guard root.is(SOAPNames.envelope, "Envelope") else {
            throw BrokerError(.upstreamError, "malformed RST response: not a SOAP envelope")
        }
        let body = root.child(SOAPNames.envelope, "Body")
        // Escargot answers a wrong password with its fault straight under the envelope, no Body.
        if let fault = body?.firstDescendant(SOAPNames.envelope, "Fault") ?? root.child(SOAPNames.envelope, "Fault") {
            return .fault(readFault(fault, envelope: root))
        }
        guard let body else {
            throw BrokerError(.upstreamError, "malformed RST response: not a SOAP envelope")
        }
        guard
            let collection = body.firstDescendant(where: {
                SOAPNames.trust.contains($0.namespace) && $0.localName.hasPrefix("RequestSecurityTokenResponse")
            })
        else {
            throw BrokerError(.upstreamError, "malformed RST response: neither tokens nor a fault")
        }
        let responses =
            collection.localName == "RequestSecurityTokenResponse"
            ? [collection] : collection.descendants(SOAPNames.trust, "RequestSecurityTokenResponse")
        var tokens: [RSTToken] = []
        for response in responses {
            guard let binary = response.firstDescendant(SOAPNames.security, "BinarySecurityToken") else { continue }
            guard let address = response.firstDescendant(SOAPNames.addressing, "Address")?.trimmedText,
                !address.isEmpty
            else {
                throw BrokerError(.upstreamError, "malformed RST response: a token without wsa:Address")
            }
            // RST.srf writes LifeTime, RST2.srf Lifetime.
            let lifetime = response.children.first {
                SOAPNames.trust.contains($0.namespace) && $0.localName.lowercased() == "lifetime"
            }
            tokens.append(
                RSTToken(
                    address: address,
                    id: binary.attribute("Id", in: SOAPNames.utility.union([""])) ?? "",
                    ticket: Secret(binary.trimmedText),
                    created: lifetime?.child(SOAPNames.utility, "Created").flatMap { ISO8601.date($0.text) },
                    expires: lifetime?.child(SOAPNames.utility, "Expires").flatMap { ISO8601.date($0.text) },
                    binarySecret: response.firstDescendant(SOAPNames.trust, "BinarySecret").map(\.trimmedText)
                        .flatMap { $0.isEmpty ? nil : Secret($0) }))
        }
        return .tokens(tokens)
    }

    private static func readFault(_ fault: MiniXML.Element, envelope: MiniXML.Element) -> RSTFault {
        func text(_ e: MiniXML.Element?) -> String? {
            guard let t = e?.trimmedText, !t.isEmpty else { return nil }
            return t
        }
        // SOAP 1.1: faultcode and faultstring, unqualified (or, from some templates, in the
        // envelope's namespace).
        let soap11 = SOAPNames.envelope.union([""])
        // SOAP 1.2: Code/Value, refined by nested Subcode/Value.
        var code = text(fault.child(soap11, "faultcode"))
        if code == nil, var node = fault.child(SOAPNames.envelope, "Code") {
            code = text(node.child(SOAPNames.envelope, "Value"))
            while let sub = node.child(SOAPNames.envelope, "Subcode") {
                if let v = text(sub.child(SOAPNames.envelope, "Value")) { code = v }
                node = sub
            }
        }
        let reason =
            text(fault.child(soap11, "faultstring"))
            ?? text(fault.child(SOAPNames.envelope, "Reason")?.child(SOAPNames.envelope, "Text"))
        let passport = SOAPNames.passportFault
        let error = fault.firstDescendant(passport, "error") ?? envelope.firstDescendant(passport, "error")
        let isRedirect = { (e: MiniXML.Element) in
            passport.contains(e.namespace) && e.localName.lowercased() == "redirecturl"
        }
        let redirect = fault.firstDescendant(where: isRedirect) ?? envelope.firstDescendant(where: isRedirect)
        return RSTFault(
            faultcode: code,
            faultstring: reason,
            reqstatus: text(envelope.firstDescendant(passport, "reqstatus")),
            errorValue: text(error?.child(passport, "value")),
            internalErrorText: text(error?.firstDescendant(passport, "internalerror")?.child(passport, "text")),
            redirectURL: text(redirect))
    }
}

/// The namespace URIs the RST answers are read in, by role. Each role accepts every version the
/// live service and revival servers were seen to use.
enum SOAPNames {
    /// SOAP 1.1 (RST.srf) and SOAP 1.2 (RST2.srf).
    static let envelope: Set<String> = [
        "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope",
    ]
    /// WS-Trust: April 2004 (RST.srf), February 2005 (RST2.srf), OASIS 1.3.
    static let trust: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2004/04/trust", "http://schemas.xmlsoap.org/ws/2005/02/trust",
        "http://docs.oasis-open.org/ws-sx/ws-trust/200512",
    ]
    /// WS-Security: the 2003 draft (RST.srf) and OASIS 1.0 (RST2.srf).
    static let security: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2003/06/secext",
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    ]
    /// WS-Security utility (`Created`, `Expires`, `wsu:Id`): OASIS 1.0 and the 2002 draft.
    static let utility: Set<String> = [
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
        "http://schemas.xmlsoap.org/ws/2002/07/utility",
    ]
    /// WS-Addressing (`Address`): March 2004 (RST.srf), August 2004, the W3C's (RST2.srf).
    static let addressing: Set<String> = [
        "http://schemas.xmlsoap.org/ws/2004/03/addressing", "http://schemas.xmlsoap.org/ws/2004/08/addressing",
        "http://www.w3.org/2005/08/addressing",
    ]
    /// Passport's fault details (`psf:pp`, `psf:error`, `psf:redirectUrl`).
    static let passportFault: Set<String> = ["http://schemas.microsoft.com/Passport/SoapServices/SOAPFault"]
}
