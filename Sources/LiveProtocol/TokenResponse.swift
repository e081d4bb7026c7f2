import BrokerCore
import Foundation

/// The answer of oauth20_token.srf to a refresh.
package enum TokenResponse: Sendable, Hashable {
    /// `refreshToken` is the rotated refresh token when the server sent one: store it.
    case success(access: Secret, expiresIn: Int, refreshToken: Secret?, scope: String, userID: String?)
    /// An OAuth error (`invalid_grant`, `invalid_scope`, ...), whatever the HTTP status.
    case failure(error: String, description: String)
    /// HTTP 429 or the service's `errorCode` 803.
    case rateLimited(message: String)

    /// Throws `.upstreamError` for a body that is neither tokens nor an error, and
    /// `.temporarilyUnavailable` for a 5xx without an OAuth error. Messages never quote the body.
    package static func parse(status: Int, body: [UInt8]) throws(BrokerError) -> TokenResponse {
        try parse(status: status, body: Data(body))
    }

    package static func parse(status: Int, body: Data) throws(BrokerError) -> TokenResponse {
        let json = JSONValue.object(from: body)
        if status == 429 || json?["errorCode"]?.int == 803 {
            let message = json?.nonEmptyString("message") ?? json?.nonEmptyString("error_description")
            return .rateLimited(message: message ?? "rate limit exceeded (HTTP \(status))")
        }
        guard let json else {
            if (500...599).contains(status) {
                throw BrokerError(.temporarilyUnavailable, "token endpoint answered HTTP \(status)")
            }
            throw BrokerError(.upstreamError, "malformed token response: not a JSON object (HTTP \(status))")
        }
        if let error = json.nonEmptyString("error") {
            return .failure(error: error, description: json["error_description"]?.string ?? "")
        }
        guard (200...299).contains(status) else {
            if (500...599).contains(status) {
                throw BrokerError(.temporarilyUnavailable, "token endpoint answered HTTP \(status)")
            }
            throw BrokerError(.upstreamError, "malformed token response: HTTP \(status) without an error")
        }
        guard let access = json.nonEmptyString("access_token") else {
            throw BrokerError(.upstreamError, "malformed token response: no access_token")
        }
        guard let expiresIn = json["expires_in"]?.int, expiresIn >= 0 else {
            throw BrokerError(.upstreamError, "malformed token response: no valid expires_in")
        }
        return .success(
            access: Secret(access),
            expiresIn: expiresIn,
            refreshToken: json.nonEmptyString("refresh_token").map(Secret.init),
            scope: json["scope"]?.string ?? "",
            userID: json.nonEmptyString("user_id"))
    }
}
