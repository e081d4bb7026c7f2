import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The public endpoints, served at the same paths as on the real hosts.
final class IdentityProvider: SimApplication {
    let state: SimState
    let logger: Logger?
    let gateway: NSGateway

    init(state: SimState, logger: Logger?) {
        self.state = state
        self.logger = logger
        self.gateway = NSGateway(state: state, logger: logger)
    }

    func log(_ request: SimRequest, endpoint: String, response: SimResponse?, outcome: String, elapsed: Double) {
        guard let logger else { return }
        var metadata: Logger.Metadata = [
            "method": "\(request.method.rawValue)", "path": "\(request.path)", "endpoint": "\(endpoint)",
            "status": "\(response.map { String($0.status.code) } ?? "-")", "ms": "\(String(format: "%.2f", elapsed))",
        ]
        if let account = response?.account { metadata["account"] = "\(account)" }
        if let scope = response?.scope { metadata["scope"] = "\(scope)" }
        if !outcome.isEmpty { metadata["fault"] = "\(outcome)" }
        logger.info("request", metadata: metadata)
    }

    func handle(_ request: SimRequest) -> (action: SimAction, endpoint: String) {
        guard let endpoint = SimEndpoint.match(path: request.path) else {
            return (.respond(.text(.notFound, "<html><body>The page cannot be found</body></html>")), "-")
        }
        let now = Date()
        let fault = state.withLock { world -> FaultRule? in
            world.counters.requests[endpoint.rawValue, default: 0] += 1
            return world.takeFault(endpoint: endpoint.rawValue, now: now)
        }
        let process = { self.countAccount(self.dispatch(endpoint, request, soapFault: nil)) }
        guard let fault else { return (.respond(process()), endpoint.rawValue) }
        let action: SimAction
        switch fault.kind {
        case .latency:
            action = .delayed(.milliseconds(Int64(fault.latencyMs ?? 1000)), process)
        case .status:
            let status = HTTPResponseStatus(statusCode: fault.status ?? 503)
            var response = SimResponse.text(
                status, "<html><head><title>\(status.reasonPhrase)</title></head><body><h1>\(status.code) \(status.reasonPhrase)</h1></body></html>")
            if let retry = fault.retryAfter { response.headers.append(("Retry-After", String(retry))) }
            action = .respond(response)
        case .rateLimit:
            var response = SimResponse.json(.tooManyRequests, LiveSimText.rateLimitBody)
            response.headers.append(("Retry-After", String(fault.retryAfter ?? 300)))
            action = .respond(response)
        case .reset:
            if fault.afterProcessing == true { _ = process() }
            action = .reset
        case .hang:
            if fault.afterProcessing == true { _ = process() }
            action = .hang
        case .truncate:
            action = .truncate(process())
        case .malformed:
            var response = process()
            response.status = .ok
            response.body = Array(response.body.prefix(max(1, response.body.count / 2)))
            action = .respond(response)
        case .soapFault:
            if endpoint == .rst || endpoint == .rst2 {
                action = .respond(countAccount(dispatch(endpoint, request, soapFault: fault.soapFault ?? .failedAuthentication)))
            } else {
                action = .respond(.text(.internalServerError, "<html><body>soap_fault applies to RST.srf only</body></html>"))
            }
        }
        return (action, endpoint.rawValue)
    }

    private func countAccount(_ response: SimResponse) -> SimResponse {
        if response.account != nil || response.scope != nil {
            state.withLock { world in
                if let account = response.account { world.counters.requestsByAccount[account, default: 0] += 1 }
                if let scope = response.scope { world.counters.requestsByScope[scope, default: 0] += 1 }
            }
        }
        return response
    }

    private func dispatch(_ endpoint: SimEndpoint, _ request: SimRequest, soapFault: SOAPFaultKind?) -> SimResponse {
        switch endpoint {
        case .authorize: return authorize(request)
        case .post: return post(request)
        case .desktop: return .text(.ok, Templates.desktopPage)
        case .token: return token(request)
        case .rst, .rst2: return rst(request, endpoint: endpoint, soapFault: soapFault)
        case .userInitialization: return userInitialization(request)
        case .skypetoken: return skypetoken(request)
        case .abuse: return .text(.ok, Templates.abusePage())
        case .proofs: return .text(.ok, Templates.proofsPage(host: request.host, login: ""))
        case .gateway: return gateway.handle(request)
        }
    }

    // MARK: - Sign-in

    /// The parameters authorize and post.srf share, checked the way the real service did.
    private struct AuthorizeParameters {
        var scope: String
        var redirectURI: String
    }

    private func desktopURL(_ request: SimRequest) -> String { "https://\(request.host)/oauth20_desktop.srf" }

    private func errorRedirect(_ base: String, _ error: String, _ description: String) -> SimResponse {
        .redirect("\(base)?lc=1033#error=\(Form.escape(error))&error_description=\(Form.escape(description))")
    }

    private func checkAuthorize(_ request: SimRequest) -> Result<AuthorizeParameters, SimResponseBox> {
        let q = request.queryItems
        let redirect = q["redirect_uri"] ?? ""
        guard redirect == SimDefaults.desktopRedirect || redirect == desktopURL(request) else {
            return .failure(SimResponseBox(errorRedirect(desktopURL(request), "invalid_request", LiveSimText.badRedirectURI)))
        }
        guard let clientID = q["client_id"], !clientID.isEmpty else {
            return .failure(SimResponseBox(errorRedirect(redirect, "invalid_request", "The client_id parameter is missing.")))
        }
        guard let scope = q["scope"], SimScopes.all.contains(scope) else {
            return .failure(SimResponseBox(errorRedirect(redirect, "invalid_scope",
                "The provided value for the input parameter 'scope' is not valid. The scope '\(q["scope"] ?? "")' does not exist.")))
        }
        guard clientID == SimScopes.messengerClientID else {
            return .failure(SimResponseBox(errorRedirect(redirect, "unauthorized_client",
                "The client does not exist or is not enabled for the requested scope.")))
        }
        guard q["response_type"] == "token" else {
            return .failure(SimResponseBox(errorRedirect(redirect, "unsupported_response_type",
                "The provided value for the input parameter 'response_type' is not allowed for this client. Expected value is 'token'.")))
        }
        return .success(AuthorizeParameters(scope: scope, redirectURI: redirect))
    }

    /// Issues a new grant family with an access token for `scope`, its refresh token, and new
    /// session cookies, and builds the final desktop redirect.
    private func completeSignIn(login: String, scope: String, redirectURI: String, now: Date) -> SimResponse {
        let access = TokenFactory.accessToken()
        let refresh = TokenFactory.refreshToken()
        let (fragment, cookies) = state.withLock { world -> (String, [String]) in
            let family = world.newFamily(login: login)
            let issued = world.issue(.accessToken, value: access, login: login, scope: scope, family: family, now: now)
            _ = world.issue(.refreshToken, value: refresh, login: login, family: family, now: now)
            let cookies = world.newCookies(login: login, now: now).map {
                "\($0.name)=\($0.value); Max-Age=\($0.maxAge); path=/; secure; HttpOnly"
            }
            world.counters.logins += 1
            let user = world.accounts[SimWorld.key(login)]?.userID ?? ""
            let lifetime = Int(issued.expiresAt.timeIntervalSince(now))
            let fragment = Form.encode([
                ("access_token", access), ("token_type", "bearer"), ("expires_in", String(lifetime)),
                ("scope", scope), ("refresh_token", refresh), ("user_id", user),
            ])
            return (fragment, cookies)
        }
        let separator = redirectURI.contains("?") ? "&" : "?"
        var response = SimResponse.redirect("\(redirectURI)\(separator)lc=1033#\(fragment)", cookies: cookies)
        response.account = SimWorld.key(login)
        response.scope = scope
        return response
    }

    private func loginPage(_ request: SimRequest, query: String, mspok existing: String?, error: String?, now: Date) -> SimResponse {
        let ppft = TokenFactory.ppft()
        let mspok = existing ?? ("$uuid-" + UUID().uuidString.lowercased())
        let style = state.withLock { world -> PageStyle in
            world.ppfts[ppft] = PPFTRecord(mspok: mspok, expiresAt: now.addingTimeInterval(SimWorld.ppftLifetime), used: false)
            return world.settings.pageStyle
        }
        let context = "contextid=\(TokenFactory.hex(8).uppercased())&bk=\(Int(now.timeIntervalSince1970))&uaid=\(TokenFactory.hex(16))"
        let urlPost = "https://\(request.host)/ppsecure/post.srf?\(query.isEmpty ? "" : query + "&")\(context)"
        var response = SimResponse.text(.ok, Templates.loginPage(style: style, urlPost: urlPost, ppft: ppft, errorText: error))
        response.headers.append(("Set-Cookie", "MSPRequ=id=N&lt=\(Int(now.timeIntervalSince1970))&co=1; path=/; secure; HttpOnly"))
        response.headers.append(("Set-Cookie", "MSPOK=\(mspok); path=/; secure; HttpOnly"))
        return response
    }

    private func authorize(_ request: SimRequest) -> SimResponse {
        guard request.method == .GET else { return .text(.methodNotAllowed, "") }
        let params: AuthorizeParameters
        switch checkAuthorize(request) {
        case .failure(let box): return box.response
        case .success(let p): params = p
        }
        let now = Date()
        if let session = state.withLock({ $0.sessionAccount(cookies: request.cookies, now: now) }) {
            return completeSignIn(login: session.login, scope: params.scope, redirectURI: params.redirectURI, now: now)
        }
        return loginPage(request, query: request.query, mspok: nil, error: nil, now: now)
    }

    private enum LoginCheck {
        case badPPFT, unknown, rateLimited, wrongPassword(String), locked(String), twoFactor(String), ok(String)
    }

    private func post(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let params: AuthorizeParameters
        switch checkAuthorize(request) {
        case .failure(let box): return box.response
        case .success(let p): params = p
        }
        let form = Form.decode(request.bodyText)
        let login = form["login"] ?? form["loginfmt"] ?? ""
        let password = form["passwd"] ?? form["password"] ?? ""
        let mspok = request.cookies["MSPOK"]
        let now = Date()
        // The query the page was served with, without the per-page context, so a retry page posts the same way.
        let query = request.query.split(separator: "&").filter {
            !$0.hasPrefix("contextid=") && !$0.hasPrefix("bk=") && !$0.hasPrefix("uaid=")
        }.joined(separator: "&")
        let check = state.withLock { world -> LoginCheck in
            guard let ppft = form["PPFT"], let mspok, var record = world.ppfts[ppft], !record.used,
                record.expiresAt > now, record.mspok == mspok
            else {
                world.counters.loginFailures["bad_ppft", default: 0] += 1
                return .badPPFT
            }
            record.used = true
            world.ppfts[ppft] = record
            guard let account = world.accounts[SimWorld.key(login)] else {
                world.counters.loginFailures["unknown_account", default: 0] += 1
                return .unknown
            }
            let key = SimWorld.key(login)
            if account.spec.rateLimited {
                world.counters.loginFailures["rate_limited", default: 0] += 1
                return .rateLimited
            }
            guard account.spec.password == password else {
                world.counters.loginFailures["wrong_password", default: 0] += 1
                return .wrongPassword(key)
            }
            if account.spec.locked {
                world.counters.loginFailures["locked", default: 0] += 1
                return .locked(key)
            }
            if account.spec.twoFactor {
                world.counters.loginFailures["two_factor", default: 0] += 1
                return .twoFactor(key)
            }
            return .ok(key)
        }
        var response: SimResponse
        switch check {
        case .badPPFT:
            response = loginPage(request, query: query, mspok: mspok, error: LiveSimText.sessionExpired, now: now)
        case .unknown:
            response = loginPage(request, query: query, mspok: mspok, error: LiveSimText.unknownAccount, now: now)
        case .rateLimited:
            response = .json(.tooManyRequests, LiveSimText.rateLimitBody)
            response.headers.append(("Retry-After", "300"))
        case .wrongPassword(let key):
            response = loginPage(request, query: query, mspok: mspok, error: LiveSimText.wrongPassword, now: now)
            response.account = key
        case .locked(let key):
            response = .redirect("https://\(request.host)/Abuse?mkt=en-US&uiflavor=host&id=\(TokenFactory.hex(4))")
            response.account = key
        case .twoFactor(let key):
            response = .text(.ok, Templates.proofsPage(host: request.host, login: login))
            response.account = key
        case .ok(let key):
            response = completeSignIn(login: key, scope: params.scope, redirectURI: params.redirectURI, now: now)
        }
        return response
    }

    // MARK: - Tokens

    private func oauthError(_ error: String, _ description: String) -> SimResponse {
        .json(.badRequest, #"{"error":"\#(error)","error_description":"\#(description.replacingOccurrences(of: "\"", with: "\\\""))"}"#)
    }

    private enum RefreshOutcome {
        case ok(login: String, lifetime: Int, refresh: String, user: String)
        case failed(String, String, login: String?)
    }

    private func token(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let form = Form.decode(request.bodyText)
        guard let grantType = form["grant_type"] else {
            return oauthError("invalid_request", "The request is missing a required parameter: grant_type.")
        }
        guard grantType == "refresh_token" else {
            return oauthError("unsupported_grant_type", "The provided value for the input parameter 'grant_type' is not valid.")
        }
        guard let clientID = form["client_id"], !clientID.isEmpty else {
            return oauthError("invalid_request", "The request is missing a required parameter: client_id.")
        }
        guard let refreshToken = form["refresh_token"], !refreshToken.isEmpty else {
            return oauthError("invalid_request", "The request is missing a required parameter: refresh_token.")
        }
        let scope = form["scope"] ?? ""
        guard SimScopes.all.contains(scope) else {
            return oauthError("invalid_scope",
                "The provided value for the input parameter 'scope' is not valid. The scope '\(scope)' does not exist.")
        }
        guard clientID == SimScopes.messengerClientID else {
            return oauthError("unauthorized_client", "The client does not exist or is not enabled for the requested scope.")
        }
        let now = Date()
        let newAccess = TokenFactory.accessToken()
        let newRefresh = TokenFactory.refreshToken()
        let outcome = state.withLock { world -> RefreshOutcome in
            let result = Self.refresh(&world, token: refreshToken, scope: scope, access: newAccess, newRefresh: newRefresh, now: now)
            switch result {
            case .ok: world.counters.refreshes += 1
            case .failed(let code, _, _): world.counters.refreshFailures[code, default: 0] += 1
            }
            return result
        }
        switch outcome {
        case .failed(let code, let description, let login):
            var response = oauthError(code, description)
            response.account = login
            response.scope = scope
            return response
        case .ok(let login, let lifetime, let refresh, let user):
            var response = SimResponse.json(.ok,
                #"{"token_type":"bearer","expires_in":\#(lifetime),"scope":"\#(scope)","access_token":"\#(newAccess)","refresh_token":"\#(refresh)","user_id":"\#(user)"}"#)
            response.account = login
            response.scope = scope
            return response
        }
    }

    /// The refresh grant, with the three rotation modes.
    private static func refresh(
        _ world: inout SimWorld, token: String, scope: String, access: String, newRefresh: String, now: Date
    ) -> RefreshOutcome {
        guard var record = world.credentials[token], record.kind == .refreshToken,
            let account = world.accounts[record.login]
        else { return .failed("invalid_grant", LiveSimText.invalidGrant, login: nil) }
        let login = record.login
        if world.invalidReason(record, now: now) != nil || account.revokedScopes.contains(scope) {
            return .failed("invalid_grant", LiveSimText.invalidGrant, login: login)
        }
        var refreshOut = token
        switch world.rotation(for: login) {
        case .none:
            break
        case .rotate:
            if let rotatedAt = record.rotatedAt {
                if now.timeIntervalSince(rotatedAt) > TimeInterval(world.settings.rotationGrace) {
                    world.counters.refreshTokenReuse += 1
                    return .failed("invalid_grant", LiveSimText.invalidGrant, login: login)
                }
                world.counters.rotatedGraceUses += 1
            } else {
                record.rotatedAt = now
                world.credentials[token] = record
            }
            refreshOut = newRefresh
        case .strict:
            if record.rotatedAt != nil {
                world.counters.refreshTokenReuse += 1
                if let family = record.family, world.families[family]?.revoked == nil {
                    world.families[family]?.revoked = "refresh token reused"
                    world.counters.revokedFamilies += 1
                }
                return .failed("invalid_grant", LiveSimText.invalidGrant, login: login)
            }
            record.rotatedAt = now
            world.credentials[token] = record
            refreshOut = newRefresh
        }
        if refreshOut != token {
            _ = world.issue(.refreshToken, value: refreshOut, login: login, family: record.family, now: now)
        }
        let issued = world.issue(.accessToken, value: access, login: login, scope: scope, family: record.family, now: now)
        if world.counters.issued[CredentialKind.accessToken.rawValue, default: 0] % 50_000 == 0 { world.prune(now: now) }
        return .ok(login: login, lifetime: Int(issued.expiresAt.timeIntervalSince(now).rounded()), refresh: refreshOut,
            user: account.userID)
    }

    // MARK: - RST.srf

    private func rst(_ request: SimRequest, endpoint: SimEndpoint, soapFault: SOAPFaultKind?) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let xml = request.bodyText
        guard let username = SOAPScan.firstText(of: "Username", in: xml),
            let password = SOAPScan.firstText(of: "Password", in: xml)
        else {
            return soap(.internalServerError, Templates.rstFault(
                faultcode: "wsse:InvalidSecurity", faultstring: "Invalid request", reqstatus: "0x80048820", errorValue: nil, redirectURL: nil))
        }
        let sites = SOAPScan.requestedSites(in: xml)
        let failedAuth = {
            self.soap(.internalServerError, Templates.rstFault(
                faultcode: "wsse:FailedAuthentication", faultstring: "Authentication Failure", reqstatus: "0x80048823",
                errorValue: "0x80048821", redirectURL: nil))
        }
        let profileAccrual = {
            self.soap(.internalServerError, Templates.rstFault(
                faultcode: "wsse:FailedAuthentication", faultstring: "Profile accrual is required", reqstatus: "0x80048823",
                errorValue: "0x800488fe", redirectURL: nil))
        }
        switch soapFault {
        case .failedAuthentication?: return failedAuth()
        case .profileAccrual?: return profileAccrual()
        case .redirect?:
            let target = endpoint == .rst ? "/RST2.srf" : "/RST.srf"
            return soap(.internalServerError, Templates.rstFault(
                faultcode: "psf:Redirect", faultstring: "Redirect", reqstatus: "0x80048800", errorValue: nil,
                redirectURL: "https://\(request.host)\(target)"))
        case nil: break
        }
        guard !sites.isEmpty else {
            return soap(.internalServerError, Templates.rstFault(
                faultcode: "wst:InvalidRequest", faultstring: "Invalid request: no RequestSecurityToken", reqstatus: "0x80048820",
                errorValue: nil, redirectURL: nil))
        }
        let now = Date()
        enum Outcome { case bad(String?), accrual(String), rateLimited, ok(SimAccount, [Templates.RSTIssued], Date) }
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
                    tokens.append(.init(address: site.address, policy: site.policy, ticket: nil, binarySecret: TokenFactory.base64(24)))
                    continue
                }
                let ticket = TokenFactory.ticket()
                let issued = world.issue(.ticket, value: ticket, login: key, scope: site.address, now: now)
                expires = issued.expiresAt
                tokens.append(.init(
                    address: site.address, policy: site.policy, ticket: "t=\(ticket)&p=",
                    binarySecret: site.address.lowercased() == "messengerclear.live.com" ? TokenFactory.base64(24) : nil))
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
            var response = soap(.ok, Templates.rstSuccess(
                puid: account.puid, cid: account.cid, login: account.spec.login, created: now, expires: expires, tokens: tokens))
            response.account = SimWorld.key(account.spec.login)
            return response
        }
    }

    private func soap(_ status: HTTPResponseStatus, _ xml: String) -> SimResponse {
        .text(status, xml, type: "application/soap+xml; charset=utf-8")
    }

    // MARK: - UIC and skypetoken

    private func userInitialization(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let trimmed = request.bodyText.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty, (try? JSONSerialization.jsonObject(with: Data(trimmed.utf8))) as? [String: Any] == nil {
            return .json(.badRequest, #"{"errorCode":400,"message":"The request body is not valid JSON."}"#)
        }
        let now = Date()
        let uic = TokenFactory.uic()
        let result = state.withLock { world -> (SimAccount, Issued)? in
            guard let (login, session) = world.sessionAccount(cookies: request.cookies, now: now),
                let account = world.accounts[login]
            else { return nil }
            return (account, world.issue(.uic, value: uic, login: login, session: session, now: now))
        }
        guard let (account, issued) = result else {
            return .json(.unauthorized, #"{"errorCode":401,"message":"Authentication failed: missing or invalid cookies."}"#)
        }
        let st = Int64(issued.issuedAt.timeIntervalSince1970 * 1000)
        let se = Int64(issued.expiresAt.timeIntervalSince1970 * 1000)
        let span = (se - st) / 1000
        let ttl = max(1, Int((Double(span) * 13_230 / 81_118).rounded()))
        let skypeName = "live:" + (account.spec.login.split(separator: "@").first.map(String.init) ?? account.spec.login)
        let body = """
            {"TPC":{"Issuer":"edf","Se":"\(se)","Signature":"\(TokenFactory.base64URL(32))","Sp":"connect","Sr":"a","St":"\(st)"},\
            "MappingContainer":"\(Form.escape(uic))","MappingSkypeName":"\(skypeName)","MappingStatus":"ACTIVE",\
            "RegistrationId":"\(UUID().uuidString.lowercased())","SupportsSkypeCalling":true,"SupportsChat":true,\
            "registrationTTLRefreshSeconds":\(ttl)}
            """
        var response = SimResponse.json(.ok, body)
        response.account = SimWorld.key(account.spec.login)
        return response
    }

    private func skypetoken(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let form = Form.decode(request.bodyText)
        func parameter(_ name: String) -> String? { request.headers.first(name: name) ?? form[name] }
        guard let accessToken = parameter("access_token"), parameter("scopes") == "client", parameter("partner") == "999" else {
            return .json(.badRequest, #"{"status":{"code":40000,"text":"Missing or invalid parameters: access_token, scopes=client and partner=999 are required."}}"#)
        }
        let now = Date()
        let token = TokenFactory.skypetoken()
        let result = state.withLock { world -> (String, Int)? in
            guard let issued = world.credentials[accessToken], issued.kind == .accessToken, issued.scope == SimScopes.skype,
                world.invalidReason(issued, now: now) == nil
            else { return nil }
            let skype = world.issue(.skypetoken, value: token, login: issued.login, scope: SimScopes.skype, family: issued.family, now: now)
            return (issued.login, Int(skype.expiresAt.timeIntervalSince(now).rounded()))
        }
        guard let (login, lifetime) = result else {
            return .json(.unauthorized, #"{"status":{"code":40120,"text":"\#(LiveSimText.skypetokenFailure)"}}"#)
        }
        var response = SimResponse.json(.ok, #"{"skypetoken":"\#(token)","expiresIn":\#(lifetime)}"#)
        response.account = login
        return response
    }
}

/// Lets a response travel in a `Result`'s failure.
struct SimResponseBox: Error {
    let response: SimResponse
    init(_ response: SimResponse) { self.response = response }
}

enum SimDefaults {
    static let desktopRedirect = "https://login.live.com/oauth20_desktop.srf"
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
            return Site(address: unescape(address.trimmingCharacters(in: .whitespacesAndNewlines)), policy: unescape(policy))
        }
    }

    static func unescape(_ text: String) -> String {
        text.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
