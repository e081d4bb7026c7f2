import Foundation

/// What livesim reads of an RST.srf (or RST2.srf) request: a SOAP 1.1 or 1.2 envelope whose
/// header holds `wsse:Security/wsse:UsernameToken` and whose body holds one
/// `wst:RequestSecurityToken` per site. Every name is matched by namespace URI and local name,
/// whatever the prefixes (or a default namespace) the client chose.
struct RSTRequestBody {
    struct Site {
        var address: String
        var policy: String
        /// N of the request's `Id="RST<N>"`, when it has one.
        var rstID: Int? = nil
    }

    var username: String
    var password: String
    var sites: [Site]

    /// The request, or why it is not one: not XML, not a SOAP envelope, or no credentials.
    static func read(_ body: [UInt8]) -> Result<RSTRequestBody, XMLReader.Refusal> {
        let envelope: XMLReader.Element
        do {
            envelope = try XMLReader.parse(body)
        } catch {
            return .failure(error)
        }
        guard envelope.is(XMLNS.soap, "Envelope") else { return .failure(.init(reason: "not a SOAP envelope")) }
        guard let token = envelope.child(XMLNS.soap, "Header")?.first(XMLNS.wsse, "UsernameToken"),
            let username = token.child(XMLNS.wsse, "Username")?.text,
            let password = token.child(XMLNS.wsse, "Password")?.text
        else { return .failure(.init(reason: "no wsse:UsernameToken with a Username and a Password")) }
        let requests = envelope.child(XMLNS.soap, "Body")?.descendants(XMLNS.wst, "RequestSecurityToken") ?? []
        let sites = requests.compactMap { request -> Site? in
            guard let address = request.first(XMLNS.wsa, "Address") else { return nil }
            // MSN clients send WS-Security's PolicyReference; WS-Policy has one too.
            let policy =
                (request.first(XMLNS.wsse, "PolicyReference") ?? request.first(XMLNS.wsp, "PolicyReference"))?
                .attribute("URI") ?? ""
            let id = request.attribute("Id")
            return Site(
                address: address.text.trimmingCharacters(in: .whitespacesAndNewlines), policy: policy,
                rstID: id.flatMap { $0.hasPrefix("RST") ? Int($0.dropFirst(3)) : nil })
        }
        return .success(RSTRequestBody(username: username, password: password, sites: sites))
    }
}
