import Foundation
import NIOHTTP1

/// Sign-in: the authorize page and post.srf, with the session cookies and the PPFT.
extension IdentityProvider {
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
            return .failure(
                SimResponseBox(errorRedirect(desktopURL(request), "invalid_request", LiveSimText.badRedirectURI)))
        }
        guard let clientID = q["client_id"], !clientID.isEmpty else {
            return .failure(
                SimResponseBox(errorRedirect(redirect, "invalid_request", "The client_id parameter is missing.")))
        }
        guard let scope = q["scope"], SimScopes.all.contains(scope) else {
            return .failure(
                SimResponseBox(
                    errorRedirect(
                        redirect, "invalid_scope",
                        "The provided value for the input parameter 'scope' is not valid. The scope '\(q["scope"] ?? "")' does not exist."
                    )))
        }
        guard clientID == SimScopes.messengerClientID else {
            return .failure(
                SimResponseBox(
                    errorRedirect(
                        redirect, "unauthorized_client",
                        "The client does not exist or is not enabled for the requested scope.")))
        }
        guard q["response_type"] == "token" else {
            return .failure(
                SimResponseBox(
                    errorRedirect(
                        redirect, "unsupported_response_type",
                        "The provided value for the input parameter 'response_type' is not allowed for this client. Expected value is 'token'."
                    )))
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

    private func loginPage(_ request: SimRequest, query: String, mspok existing: String?, error: String?, now: Date)
        -> SimResponse
    {
        let ppft = TokenFactory.ppft()
        let mspok = existing ?? ("$uuid-" + UUID().uuidString.lowercased())
        let style = state.withLock { world -> PageStyle in
            world.ppfts[ppft] = PPFTRecord(
                mspok: mspok, expiresAt: now.addingTimeInterval(SimWorld.ppftLifetime), used: false)
            return world.settings.pageStyle
        }
        let context =
            "contextid=\(TokenFactory.hex(8).uppercased())&bk=\(Int(now.timeIntervalSince1970))&uaid=\(TokenFactory.hex(16))"
        let urlPost = "https://\(request.host)/ppsecure/post.srf?\(query.isEmpty ? "" : query + "&")\(context)"
        var response = SimResponse.text(
            .ok, Templates.loginPage(style: style, urlPost: urlPost, ppft: ppft, errorText: error))
        response.headers.append(
            ("Set-Cookie", "MSPRequ=id=N&lt=\(Int(now.timeIntervalSince1970))&co=1; path=/; secure; HttpOnly"))
        response.headers.append(("Set-Cookie", "MSPOK=\(mspok); path=/; secure; HttpOnly"))
        return response
    }

    func authorize(_ request: SimRequest) -> SimResponse {
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
        case badPPFT, unknown, rateLimited
        case wrongPassword(String)
        case locked(String)
        case twoFactor(String)
        case ok(String)
    }

    func post(_ request: SimRequest) -> SimResponse {
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
}
