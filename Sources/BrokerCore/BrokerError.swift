/// The stable error codes of the socket API. Their spelling is part of the contract.
package enum ErrorCode: String, Sendable, Codable, CaseIterable {
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
}

/// The one error type that crosses boundaries. Messages never contain token material.
package struct BrokerError: Error, Sendable, CustomStringConvertible {
    package var code: ErrorCode
    package var message: String
    /// A command or action that fixes it, when there is one.
    package var hint: String?

    /// The lower-level error this one wraps (a storage or I/O failure), for the code that
    /// handles it. It may hold anything, token material and SQL included: it is not part of
    /// `description`, never encoded on the wire, and never logged as it is. A log names only
    /// its type (`causeTypeName`); a mirror (`dump`) shows no more.
    package var cause: (any Error & Sendable)?

    package init(_ code: ErrorCode, _ message: String, hint: String? = nil, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.cause = cause
    }

    package var description: String { "\(code.rawValue): \(message)" }

    /// The type of `cause`, the only part of it fit for a log.
    package var causeTypeName: String? { cause.map { String(reflecting: type(of: $0)) } }
}

extension BrokerError: CustomReflectable {
    /// Shows the cause's type only, so that `dump` and reflection reveal nothing the log would not.
    package var customMirror: Mirror {
        Mirror(self, children: ["code": code, "message": message, "hint": hint as Any, "cause": causeTypeName as Any])
    }
}

/// Two errors are equal when they say the same to a client; the cause is not compared.
extension BrokerError: Equatable {
    package static func == (lhs: BrokerError, rhs: BrokerError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message && lhs.hint == rhs.hint
    }
}
