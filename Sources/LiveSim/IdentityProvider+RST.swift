import Foundation
import NIOHTTP1

/// RST.srf and RST2.srf: tickets for the requested sites, or SOAP faults.
extension IdentityProvider {
    func rst(_ request: SimRequest, endpoint: SimEndpoint, soapFault: SOAPFaultKind?) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let xml = request.bodyText
        guard let username = SOAPScan.firstText(of: "Username", in: xml),
            let password = SOAPScan.firstText(of: "Password", in: xml)
        else {
            return soap(
                .internalServerError,
                Templates.rstFault(
                    faultcode: "wsse:InvalidSecurity", faultstring: "Invalid request", reqstatus: "0x80048820",
                    errorValue: nil, redirectURL: nil))
        }
        let sites = SOAPScan.requestedSites(in: xml)
        let failedAuth = {
            self.soap(
                .internalServerError,
                Templates.rstFault(
                    faultcode: "wsse:FailedAuthentication", faultstring: "Authentication Failure",
                    reqstatus: "0x80048823",
                    errorValue: "0x80048821", redirectURL: nil))
        }
        let profileAccrual = {
            self.soap(
                .internalServerError,
                Templates.rstFault(
                    faultcode: "wsse:FailedAuthentication", faultstring: "Profile accrual is required",
                    reqstatus: "0x80048823",
                    errorValue: "0x800488fe", redirectURL: nil))
        }
        switch soapFault {
        case .failedAuthentication?: return failedAuth()
        case .profileAccrual?: return profileAccrual()
        case .redirect?:
            let target = endpoint == .rst ? "/RST2.srf" : "/RST.srf"
            return soap(
                .internalServerError,
                Templates.rstFault(
                    faultcode: "psf:Redirect", faultstring: "Redirect", reqstatus: "0x80048800", errorValue: nil,
                    redirectURL: "https://\(request.host)\(target)"))
        case nil: break
        }
        guard !sites.isEmpty else {
            return soap(
                .internalServerError,
                Templates.rstFault(
                    faultcode: "wst:InvalidRequest", faultstring: "Invalid request: no RequestSecurityToken",
                    reqstatus: "0x80048820",
                    errorValue: nil, redirectURL: nil))
        }
        let now = Date()
        enum Outcome {
            case bad(String?)
            case accrual(String)
            case rateLimited
            case ok(SimAccount, [Templates.RSTIssued], Date)
        }
        let outcome = state.withLock { world -> Outcome in
            let key = SimWorld.key(username)
            guard let account = world.accounts[key], account.spec.password == password, !account.spec.locked else {
                world.counters.loginFailures["rst_failed_authentication", default: 0] += 1
                return .bad(world.accounts[key] == nil ? nil : key)
            }
            if account.spec.rateLimited { return .rateLimited }
            if account.spec.twoFactor { return .accrual(key) }
            var tokens: [Templates.RSTIssued] = []
            var expires = now
            for site in sites {
                if site.address.lowercased() == "http://passport.net/tb" {
                    tokens.append(
                        .init(
                            address: site.address, policy: site.policy, ticket: nil,
                            binarySecret: TokenFactory.base64(24)))
                    continue
                }
                let ticket = TokenFactory.ticket()
                let issued = world.issue(.ticket, value: ticket, login: key, scope: site.address, now: now)
                expires = issued.expiresAt
                tokens.append(
                    .init(
                        address: site.address, policy: site.policy, ticket: "t=\(ticket)&p=",
                        binarySecret: site.address.lowercased() == "messengerclear.live.com"
                            ? TokenFactory.base64(24) : nil))
            }
            world.counters.logins += 1
            return .ok(account, tokens, expires)
        }
        switch outcome {
        case .bad(let key):
            var response = failedAuth()
            response.account = key
            return response
        case .accrual(let key):
            var response = profileAccrual()
            response.account = key
            return response
        case .rateLimited:
            var response = SimResponse.json(.tooManyRequests, LiveSimText.rateLimitBody)
            response.headers.append(("Retry-After", "300"))
            return response
        case .ok(let account, let tokens, let expires):
            var response = soap(
                .ok,
                Templates.rstSuccess(
                    puid: account.puid, cid: account.cid, login: account.spec.login, created: now, expires: expires,
                    tokens: tokens))
            response.account = SimWorld.key(account.spec.login)
            return response
        }
    }

    private func soap(_ status: HTTPResponseStatus, _ xml: String) -> SimResponse {
        .text(status, xml, type: "application/soap+xml; charset=utf-8")
    }
}

/// livesim's own reader of the SOAP requests it is sent.
enum SOAPScan {
    struct Site {
        var address: String
        var policy: String
    }

    /// The text of the first element with this local name, whatever its prefix, XML-unescaped.
    static func firstText(of local: String, in xml: String) -> String? {
        elements(local, in: xml[...]).first.map { unescape(String($0.content)) }
    }

    static func elements(_ local: String, in xml: Substring) -> [(open: Substring, content: Substring)] {
        var out: [(Substring, Substring)] = []
        var rest = xml
        while let lt = rest.firstIndex(of: "<") {
            rest = rest[rest.index(after: lt)...]
            guard let gt = rest.firstIndex(of: ">") else { break }
            let tag = rest[..<gt]
            let name = tag.prefix { !$0.isWhitespace && $0 != "/" && $0 != ">" }
            let localName = name.split(separator: ":").last ?? name
            guard localName == local, !tag.hasPrefix("/") else { continue }
            let afterOpen = rest[rest.index(after: gt)...]
            if tag.hasSuffix("/") {
                out.append((tag, afterOpen[afterOpen.startIndex..<afterOpen.startIndex]))
                continue
            }
            guard let close = afterOpen.range(of: "</\(name)>") else { break }
            out.append((tag, afterOpen[..<close.lowerBound]))
            rest = afterOpen[close.upperBound...]
        }
        return out
    }

    static func requestedSites(in xml: String) -> [Site] {
        elements("RequestSecurityToken", in: xml[...]).compactMap { element in
            guard let address = elements("Address", in: element.content).first?.content else { return nil }
            var policy = ""
            if let ref = elements("PolicyReference", in: element.content).first?.open,
                let uri = ref.range(of: "URI=\"")
            {
                policy = String(ref[uri.upperBound...].prefix { $0 != "\"" })
            }
            return Site(
                address: unescape(address.trimmingCharacters(in: .whitespacesAndNewlines)), policy: unescape(policy))
        }
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
