/// The stable error codes of the socket API. Their spelling is part of the contract.
public enum ErrorCode: String, Sendable, Codable, CaseIterable {
    case badRequest = "bad_request"
    case notFound = "not_found"
    case unknownScope = "unknown_scope"
    case forbidden
    case conflict
    case needsReauth = "needs_reauth"
    case temporarilyUnavailable = "temporarily_unavailable"
    case invalidCredentials = "invalid_credentials"
    case interactionRequired = "interaction_required"
    case accountLocked = "account_locked"
    case rateLimited = "rate_limited"
    case signInFailed = "sign_in_failed"
    case upstreamError = "upstream_error"
    /// The account lacks what this credential needs (cookies, a stored password).
    case credentialUnavailable = "credential_unavailable"
    case payloadTooLarge = "payload_too_large"
    case methodNotAllowed = "method_not_allowed"
    case internalError = "internal_error"

    /// The HTTP status the socket API answers this code with.
    public var httpStatus: Int {
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

/// The one error type that crosses boundaries. Messages never contain token material.
public struct BrokerError: Error, Sendable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// A command or action that fixes it, when there is one.
    public var hint: String?

    public init(_ code: ErrorCode, _ message: String, hint: String? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
