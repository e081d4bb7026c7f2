import Foundation
import NIOHTTP1

/// The token endpoint (oauth20_token.srf): refresh grants, and the OAuth errors the real one gave.
extension IdentityProvider {
    private func oauthError(_ error: String, _ description: String) -> SimResponse {
        .json(
            .badRequest,
            #"{"error":"\#(error)","error_description":"\#(description.replacingOccurrences(of: "\"", with: "\\\""))"}"#
        )
    }

    private enum RefreshOutcome {
        case ok(login: String, lifetime: Int, refresh: String, user: String)
        case failed(String, String, login: String?)
    }

    func token(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let form = Form.decode(request.bodyText)
        guard let grantType = form["grant_type"] else {
            return oauthError("invalid_request", "The request is missing a required parameter: grant_type.")
        }
        guard grantType == "refresh_token" else {
            return oauthError(
                "unsupported_grant_type", "The provided value for the input parameter 'grant_type' is not valid.")
        }
        guard let clientID = form["client_id"], !clientID.isEmpty else {
            return oauthError("invalid_request", "The request is missing a required parameter: client_id.")
        }
        guard let refreshToken = form["refresh_token"], !refreshToken.isEmpty else {
            return oauthError("invalid_request", "The request is missing a required parameter: refresh_token.")
        }
        let scope = form["scope"] ?? ""
        guard SimScopes.all.contains(scope) else {
            return oauthError(
                "invalid_scope",
                "The provided value for the input parameter 'scope' is not valid. The scope '\(scope)' does not exist.")
        }
        guard clientID == SimScopes.messengerClientID else {
            return oauthError(
                "unauthorized_client", "The client does not exist or is not enabled for the requested scope.")
        }
        let now = Date()
        let newAccess = TokenFactory.accessToken()
        let newRefresh = TokenFactory.refreshToken()
        let outcome = state.withLock { world -> RefreshOutcome in
            let result = Self.refresh(
                &world, token: refreshToken, scope: scope, access: newAccess, newRefresh: newRefresh, now: now)
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
            var response = SimResponse.json(
                .ok,
                #"{"token_type":"bearer","expires_in":\#(lifetime),"scope":"\#(scope)","access_token":"\#(newAccess)","refresh_token":"\#(refresh)","user_id":"\#(user)"}"#
            )
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
        let issued = world.issue(
            .accessToken, value: access, login: login, scope: scope, family: record.family, now: now)
        if world.counters.issued[CredentialKind.accessToken.rawValue, default: 0] % 50_000 == 0 {
            world.prune(now: now)
        }
        return .ok(
            login: login, lifetime: Int(issued.expiresAt.timeIntervalSince(now).rounded()), refresh: refreshOut,
            user: account.userID)
    }
}
