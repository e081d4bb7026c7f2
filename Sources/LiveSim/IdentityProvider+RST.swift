import Foundation
import NIOHTTP1

/// RST.srf and RST2.srf: tickets for the requested sites, or SOAP faults.
extension IdentityProvider {
    func rst(_ request: SimRequest, endpoint: SimEndpoint, soapFault: SOAPFaultKind?) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let username: String
        let password: String
        let sites: [RSTRequestBody.Site]
        switch RSTRequestBody.read(request.body) {
        case .success(let body): (username, password, sites) = (body.username, body.password, body.sites)
        case .failure(let refusal):
            return soap(
                .internalServerError,
                Templates.rstFault(
                    faultcode: "wsse:InvalidSecurity", faultstring: "Invalid request: \(refusal.reason)",
                    reqstatus: "0x80048820", errorValue: nil, redirectURL: nil))
        }
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
            case ok(SimAccount, [Templates.RSTIssued])
        }
        let outcome = state.withLock { world -> Outcome in
            let key = SimWorld.key(username)
            guard let account = world.accounts[key], account.spec.password == password, !account.spec.locked else {
                world.counters.loginFailures["rst_failed_authentication", default: 0] += 1
                return .bad(world.accounts[key] == nil ? nil : key)
            }
            if account.spec.rateLimited { return .rateLimited }
            if account.spec.twoFactor { return .accrual(key) }
            let style = world.settings.rstNumbering
            let numbers = Self.tokenNumbers(sites, style: style)
            var tokens: [Templates.RSTIssued] = []
            for (site, number) in zip(sites, numbers) {
                // Every site gets its own value; messengerclear.live.com and Passport.NET/tb each get a
                // BinarySecret of their own, kept with the token (only messengerclear's keys the SSO proof).
                let address = site.address.lowercased()
                let legacy = address == Self.passportTB
                let value = legacy ? TokenFactory.base64(Int.random(in: 700...760)) : TokenFactory.ticket()
                let secret = legacy || address == Self.messengerClear ? TokenFactory.base64(24) : nil
                let issued = world.issue(
                    .ticket, value: value, login: key, scope: site.address, binarySecret: secret, now: now)
                tokens.append(
                    .init(
                        address: site.address,
                        token: legacy ? .legacy(cipherValue: value) : .compact("t=\(value)&p="),
                        number: legacy && style == .escargot ? 0 : number, binarySecret: secret, created: now,
                        expires: issued.expiresAt))
            }
            world.counters.logins += 1
            return .ok(account, tokens)
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
        case .ok(let account, let tokens):
            var response = soap(
                .ok,
                Templates.rstSuccess(
                    puid: account.puid, cid: account.cid, login: account.spec.login, now: now,
                    soap12: endpoint == .rst2, tokens: tokens))
            response.account = SimWorld.key(account.spec.login)
            return response
        }
    }

    static let passportTB = "http://passport.net/tb"
    static let messengerClear = "messengerclear.live.com"

    /// N of each site's `Compact<N>`. The live service used the request's RST Id (RST1 → Compact1).
    /// Escargot counts its own loop from 1 over every site, Passport.NET/tb included, which shifts the
    /// Ids (RST1 → Compact2). Under that style no site's N equals its RST Id: a client that looks for
    /// `Compact<RST Id>` finds another site's token (whose ticket is refused for this site) or none.
    static func tokenNumbers(_ sites: [RSTRequestBody.Site], style: RSTNumbering) -> [Int] {
        let rstIDs = sites.enumerated().map { $1.rstID ?? $0 }
        switch style {
        case .rstID:
            return rstIDs
        case .escargot:
            var offset = 1
            while rstIDs.enumerated().contains(where: { $0 + offset == $1 }) { offset += 1 }
            return rstIDs.indices.map { $0 + offset }
        }
    }

    private func soap(_ status: HTTPResponseStatus, _ xml: String) -> SimResponse {
        .text(status, xml, type: "application/soap+xml; charset=utf-8")
    }
}
