import BrokerAPI
import BrokerCore
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
            body: (try? BrokerJSON.encode(
                ErrorResponse(code: error.code.rawValue, message: error.message, hint: error.hint))) ?? [],
            close: close)
    }
}

extension APIResponse {
    /// The token answer, written by hand: no encoder, on the cached-read path.
    static func token(_ served: ServedCredential, now: Date) -> APIResponse {
        let (expiresIn, length) = tokenLength(served, now: now)
        var body: [UInt8] = []
        body.reserveCapacity(length)
        appendTokenBody(served, expiresIn: expiresIn, to: &body)
        return APIResponse(status: .ok, body: body)
    }

    /// The token answer, head and body, written straight into the output: the hot path. The same
    /// bytes as `token(_:now:)` gives with `serialize`.
    static func writeToken(
        _ served: ServedCredential, now: Date, keepAlive: Bool, omitBody: Bool, into out: inout [UInt8]
    ) {
        let (expiresIn, length) = tokenLength(served, now: now)
        out.append(contentsOf: okJSONHead)
        appendDecimal(length, to: &out)
        out.append(contentsOf: keepAlive ? endOfHead : closeAndEndOfHead)
        if !omitBody { appendTokenBody(served, expiresIn: expiresIn, to: &out) }
    }

    /// Seconds left, and the length of the JSON body that says so.
    private static func tokenLength(_ served: ServedCredential, now: Date) -> (expiresIn: Int, length: Int) {
        let expiresIn = max(0, Int(served.credential.expiresAt.timeIntervalSince(now).rounded(.down)))
        var digits = 1
        var n = expiresIn
        while n >= 10 {
            n /= 10
            digits += 1
        }
        let length =
            tokenParts.fixedLength + served.credential.value.utf8Count + served.token.scope.rawValue.utf8.count
            + BrokerJSON.dateLength(served.credential.expiresAt) + digits
        return (expiresIn, length)
    }

    /// `{"access_token":"…","token_type":"bearer","scope":"…","expires_at":"…","expires_in":N}`
    private static func appendTokenBody(_ served: ServedCredential, expiresIn: Int, to out: inout [UInt8]) {
        var scope = served.token.scope.rawValue
        out.append(contentsOf: tokenParts.open)
        served.credential.value.withUTF8 { out.append(contentsOf: $0) }
        out.append(contentsOf: tokenParts.scope)
        scope.withUTF8 { out.append(contentsOf: $0) }
        out.append(contentsOf: tokenParts.expiresAt)
        BrokerJSON.appendDate(served.credential.expiresAt, to: &out)
        out.append(contentsOf: tokenParts.expiresIn)
        appendDecimal(expiresIn, to: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// The fixed parts of the token answer.
    static let tokenParts = (
        open: Array(#"{"access_token":""#.utf8), scope: Array(#"","token_type":"bearer","scope":""#.utf8),
        expiresAt: Array(#"","expires_at":""#.utf8), expiresIn: Array(#"","expires_in":"#.utf8),
        fixedLength: #"{"access_token":""#.utf8.count + #"","token_type":"bearer","scope":""#.utf8.count
            + #"","expires_at":""#.utf8.count
            + #"","expires_in":"#.utf8.count + 1
    )

    /// Appends the whole HTTP/1.1 response: status line, the three header fields the API uses,
    /// and the body (none for HEAD, with the length it would have).
    func serialize(into out: inout [UInt8], keepAlive: Bool, omitBody: Bool) {
        if status == .ok && contentType == "application/json" {
            out.append(contentsOf: Self.okJSONHead)
        } else {
            out.append(contentsOf: "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nContent-Type: ".utf8)
            out.append(contentsOf: contentType.utf8)
            out.append(contentsOf: "\r\nContent-Length: ".utf8)
        }
        Self.appendDecimal(body.count, to: &out)
        out.append(contentsOf: keepAlive ? Self.endOfHead : Self.closeAndEndOfHead)
        if !omitBody { out.append(contentsOf: body) }
    }

    static let okJSONHead = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ".utf8)
    static let endOfHead = Array("\r\n\r\n".utf8)
    static let closeAndEndOfHead = Array("\r\nConnection: close\r\n\r\n".utf8)

    /// A non-negative number in decimal, without making a String.
    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        precondition(value >= 0)
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var n = value
            var i = buffer.count
            repeat {
                i -= 1
                buffer[i] = UInt8(truncatingIfNeeded: 0x30 + n % 10)
                n /= 10
            } while n > 0
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[i...]))
        }
    }
}

extension ErrorCode {
    /// The HTTP status the socket API answers this code with.
    var httpStatus: Int {
        switch self {
        case .badRequest, .unknownScope: 400
        case .forbidden: 403
        case .notFound: 404
        case .methodNotAllowed: 405
        case .conflict, .credentialUnavailable: 409
        case .payloadTooLarge: 413
        case .needsReauth, .invalidCredentials, .interactionRequired, .accountLocked, .signInFailed: 401
        case .rateLimited: 429
        case .upstreamError: 502
        case .temporarilyUnavailable: 503
        case .internalError: 500
        }
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
                    scope: scope.kind.fullName, alias: scope.kind.name,
                    expiresAt: scope.expiresAt.map(BrokerJSON.formatDate),
                    lastRefresh: scope.lastRefresh.map(BrokerJSON.formatDate),
                    nextRefresh: scope.nextRefresh.map(BrokerJSON.formatDate),
                    backoffUntil: scope.backoffUntil.map(BrokerJSON.formatDate), failures: scope.failures,
                    lastError: scope.lastError.map {
                        APIErrorInfo(code: $0.code.rawValue, message: $0.message, hint: $0.hint)
                    })
            })
    }
}

extension ServedCredential {
    /// The expiry in the socket API's RFC 3339 form. The cached token answer writes it straight
    /// into its buffer instead (`BrokerJSON.appendDate`): no text is kept per credential.
    var expiresAtText: String { BrokerJSON.formatDate(credential.expiresAt) }
}
