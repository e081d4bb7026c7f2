import Crypto
import Foundation

/// RST.srf and RST2.srf answers, shaped like the captures: SOAP 1.1 with `wst:LifeTime` for RST.srf,
/// SOAP 1.2 with `wst:Lifetime` and attached/unattached references for RST2.srf.
extension Templates {
    /// One token of a RequestSecurityTokenResponseCollection.
    struct RSTIssued {
        enum Token {
            /// `wsse:BinarySecurityToken Id="Compact<N>"` holding `t=...&p=` (XML-escaped on output).
            case compact(String)
            /// Passport.NET/tb: `EncryptedData Id="BinaryDAToken<N>"` with this CipherValue.
            case legacy(cipherValue: String)
        }

        var address: String
        var token: Token
        /// N of `Compact<N>` or `BinaryDAToken<N>`.
        var number: Int
        var binarySecret: String?
        var created: Date
        var expires: Date
    }

    /// Tabs to the depth, the text, a newline.
    private static func line(_ depth: Int, _ text: String) -> String {
        String(repeating: "\t", count: depth) + text + "\n"
    }

    static func rstHeader(puid: String, cid: String, login: String, reqstatus: String, authstate: String) -> String {
        """
        <S:Header>
        \t\t<psf:pp xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault">
        \t\t\t<psf:serverVersion>1</psf:serverVersion>
        \t\t\t<psf:PUID>\(puid)</psf:PUID>
        \t\t\t<psf:configVersion>16.000.26889.00</psf:configVersion>
        \t\t\t<psf:uiVersion>3.100.2179.0</psf:uiVersion>
        \t\t\t<psf:authstate>\(authstate)</psf:authstate>
        \t\t\t<psf:reqstatus>\(reqstatus)</psf:reqstatus>
        \t\t\t<psf:serverInfo Path="Live1" RollingUpgradeState="ExclusiveNew" LocVersion="0" ServerTime="\(rfc3339(Date()))">livesim</psf:serverInfo>
        \t\t\t<psf:cookies/>
        \t\t\t<psf:credProperties>
        \t\t\t\t<psf:credProperty Name="MainBrandID">MSFT</psf:credProperty>
        \t\t\t\t<psf:credProperty Name="CID">\(cid)</psf:credProperty>
        \t\t\t\t<psf:credProperty Name="AuthMembername">\(xmlEscape(login))</psf:credProperty>
        \t\t\t</psf:credProperties>
        \t\t\t<psf:response/>
        \t\t</psf:pp>
        \t</S:Header>
        """
    }

    /// RST2.srf's SOAP 1.2 header: addressing, a security timestamp, then the same psf:pp.
    static func rst2Header(puid: String, cid: String, login: String, now: Date) -> String {
        let wsa =
            #"xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing""#
            + #" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd""#
        let pp = rstHeader(puid: puid, cid: cid, login: login, reqstatus: "0x0", authstate: "0x48803")
        let ppBody = pp.drop { $0 != "\n" }
        return "<S:Header>\n"
            + line(
                2,
                "<wsa:Action \(wsa) wsu:Id=\"Action\" S:mustUnderstand=\"1\">http://schemas.xmlsoap.org/ws/2005/02/trust/RSTR/Issue</wsa:Action>"
            )
            + line(
                2,
                "<wsa:To \(wsa) wsu:Id=\"To\" S:mustUnderstand=\"1\">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:To>"
            )
            + line(2, #"<wsse:Security S:mustUnderstand="1">"#)
            + line(
                3,
                #"<wsu:Timestamp xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" wsu:Id="TS">"#
            )
            + line(4, "<wsu:Created>\(rfc3339(now))</wsu:Created>")
            + line(4, "<wsu:Expires>\(rfc3339(now.addingTimeInterval(300)))</wsu:Expires>")
            + line(3, "</wsu:Timestamp>")
            + line(2, "</wsse:Security>")
            + String(ppBody.dropFirst())
    }

    /// A successful RequestSecurityTokenResponseCollection, in RST.srf's SOAP 1.1 form or, with
    /// `soap12`, in RST2.srf's SOAP 1.2 form.
    static func rstSuccess(puid: String, cid: String, login: String, now: Date, soap12: Bool, tokens: [RSTIssued])
        -> String
    {
        let wsaNS =
            soap12 ? "http://www.w3.org/2005/08/addressing" : "http://schemas.xmlsoap.org/ws/2004/03/addressing"
        let lifetime = soap12 ? "wst:Lifetime" : "wst:LifeTime"
        var body = ""
        for token in tokens {
            var response = line(3, "<wst:RequestSecurityTokenResponse>")
            let reference: String
            let value: String
            switch token.token {
            case .compact(let ticket):
                value = ticket
                reference = "Compact\(token.number)"
                response += line(4, "<wst:TokenType>urn:passport:compact</wst:TokenType>")
                response += appliesTo(token.address, wsaNS: wsaNS)
                response += lifetimeBlock(lifetime, token)
                response += line(4, "<wst:RequestedSecurityToken>")
                response += line(
                    5,
                    "<wsse:BinarySecurityToken Id=\"\(reference)\">\(xmlEscape(ticket))</wsse:BinarySecurityToken>")
                response += line(4, "</wst:RequestedSecurityToken>")
            case .legacy(let cipherValue):
                value = cipherValue
                reference = "BinaryDAToken\(token.number)"
                response += line(4, "<wst:TokenType>urn:passport:legacy</wst:TokenType>")
                response += appliesTo(token.address, wsaNS: wsaNS)
                response += lifetimeBlock(lifetime, token)
                response += line(4, "<wst:RequestedSecurityToken>")
                response += line(
                    5,
                    #"<EncryptedData xmlns="http://www.w3.org/2001/04/xmlenc#" Id="\#(reference)" Type="http://www.w3.org/2001/04/xmlenc#Element">"#
                )
                response += line(
                    6,
                    #"<EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#tripledes-cbc"></EncryptionMethod>"#
                )
                response += line(6, #"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">"#)
                response += line(7, "<ds:KeyName>http://Passport.NET/STS</ds:KeyName>")
                response += line(6, "</ds:KeyInfo>")
                response += line(6, "<CipherData>")
                response += line(7, "<CipherValue>\(cipherValue)</CipherValue>")
                response += line(6, "</CipherData>")
                response += line(5, "</EncryptedData>")
                response += line(4, "</wst:RequestedSecurityToken>")
            }
            if soap12 {
                let digest = Data(Insecure.SHA1.hash(data: Array(value.utf8)))
                for kind in ["RequestedAttachedReference", "RequestedUnattachedReference"] {
                    response += line(4, "<wst:\(kind)>")
                    response += line(5, "<wsse:SecurityTokenReference>")
                    response += line(6, "<wsse:Reference URI=\"\(digest.base64EncodedString())\"></wsse:Reference>")
                    response += line(5, "</wsse:SecurityTokenReference>")
                    response += line(4, "</wst:\(kind)>")
                }
            } else {
                let valueType = if case .compact = token.token { "urn:passport:compact" } else { "urn:passport" }
                response += line(4, "<wst:RequestedTokenReference>")
                response += line(5, "<wsse:KeyIdentifier ValueType=\"\(valueType)\"></wsse:KeyIdentifier>")
                response += line(5, "<wsse:Reference URI=\"#\(reference)\"></wsse:Reference>")
                response += line(4, "</wst:RequestedTokenReference>")
            }
            if let secret = token.binarySecret {
                response += line(4, "<wst:RequestedProofToken>")
                response += line(5, "<wst:BinarySecret>\(secret)</wst:BinarySecret>")
                response += line(4, "</wst:RequestedProofToken>")
            }
            body += response + line(3, "</wst:RequestSecurityTokenResponse>")
        }
        let collectionNS =
            soap12
            ? #"xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:wst="http://schemas.xmlsoap.org/ws/2005/02/trust" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:wsp="http://schemas.xmlsoap.org/ws/2004/09/policy" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault""#
            : #"xmlns:S="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:saml="urn:oasis:names:tc:SAML:1.0:assertion" xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:psf="http://schemas.microsoft.com/Passport/SoapServices/SOAPFault""#
        let envelope =
            soap12
            ? #"<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsa="http://www.w3.org/2005/08/addressing">"#
            : #"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/">"#
        let header =
            soap12
            ? rst2Header(puid: puid, cid: cid, login: login, now: now)
            : rstHeader(puid: puid, cid: cid, login: login, reqstatus: "0x0", authstate: "0x48803")
        return """
            <?xml version="1.0" encoding="utf-8"?>
            \(envelope)
            \t\(header)
            \t<S:Body>
            \t\t<wst:RequestSecurityTokenResponseCollection \(collectionNS)>
            \(body)\t\t</wst:RequestSecurityTokenResponseCollection>
            \t</S:Body>
            </S:Envelope>
            """
    }

    private static func appliesTo(_ address: String, wsaNS: String) -> String {
        line(4, "<wsp:AppliesTo xmlns:wsa=\"\(wsaNS)\">") + line(5, "<wsa:EndpointReference>")
            + line(6, "<wsa:Address>\(xmlEscape(address))</wsa:Address>") + line(5, "</wsa:EndpointReference>")
            + line(4, "</wsp:AppliesTo>")
    }

    private static func lifetimeBlock(_ name: String, _ token: RSTIssued) -> String {
        line(4, "<\(name)>") + line(5, "<wsu:Created>\(rfc3339(token.created))</wsu:Created>")
            + line(5, "<wsu:Expires>\(rfc3339(token.expires))</wsu:Expires>") + line(4, "</\(name)>")
    }
}
