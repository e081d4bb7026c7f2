import BrokerAPI
import BrokerCore
import BrokerEngine
import Foundation
import NIOHTTP1

/// An answer ready to write: status and JSON body.
struct APIResponse {
    var status: HTTPResponseStatus
    var body: [UInt8]
    /// Close the connection after writing (malformed or oversized requests).
    var close = false
    var contentType = "application/json"

    static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> APIResponse {
        APIResponse(status: status, body: (try? BrokerJSON.encode(value)) ?? Array("{}".utf8))
    }

    static func error(_ error: BrokerError, close: Bool = false) -> APIResponse {
        APIResponse(
            status: HTTPResponseStatus(statusCode: error.code.httpStatus),
            body: (try? BrokerJSON.encode(ErrorResponse(code: error.code.rawValue, message: error.message, hint: error.hint))) ?? [],
            close: close)
    }

    /// The token answer, written by hand: the hot path, so no encoder.
    static func token(_ served: ServedCredential, now: Date) -> APIResponse {
        let expiresIn = max(0, Int(served.credential.expiresAt.timeIntervalSince(now).rounded(.down)))
        var body: [UInt8] = []
        body.reserveCapacity(served.credential.value.exposed.utf8.count + 160)
        body += #"{"access_token":""#.utf8
        body += served.credential.value.exposed.utf8
        body += #"","token_type":"bearer","scope":""#.utf8
        body += served.token.scope.rawValue.utf8
        body += #"","expires_at":""#.utf8
        body += served.expiresAtText.utf8
        body += #"","expires_in":"#.utf8
        body += String(expiresIn).utf8
        body.append(UInt8(ascii: "}"))
        return APIResponse(status: .ok, body: body)
    }
}

extension CredentialKind {
    /// The full scope name for OAuth scopes; the credential's name otherwise.
    var fullName: String {
        if case .scope(let scope) = self { return scope.rawValue }
        return name
    }
}

extension AccountReport {
    var detail: AccountDetail {
        AccountDetail(
            name: name.rawValue, realm: realm, login: login, state: state.rawValue, stateReason: stateReason,
            scopes: credentials.map { scope in
                BrokerAPI.ScopeStatus(
                    scope: scope.kind.fullName, alias: scope.kind.name, expiresAt: scope.expiresAt.map(BrokerJSON.formatDate),
                    lastRefresh: scope.lastRefresh.map(BrokerJSON.formatDate), nextRefresh: scope.nextRefresh.map(BrokerJSON.formatDate),
                    backoffUntil: scope.backoffUntil.map(BrokerJSON.formatDate), failures: scope.failures,
                    lastError: scope.lastError.map { APIErrorInfo(code: $0.code.rawValue, message: $0.message, hint: $0.hint) })
            })
    }
}
