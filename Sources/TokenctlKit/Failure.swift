import BrokerAPI

/// tokenctl's exit statuses (listed in `tokenctl --help` and docs/API.md).
package enum ExitStatus {
    package static let success: Int32 = 0
    package static let failure: Int32 = 1
    package static let notEnrolled: Int32 = 3
    package static let needsSignIn: Int32 = 4
    package static let temporarilyUnavailable: Int32 = 5
    package static let usage: Int32 = 64 // EX_USAGE, as ArgumentParser's own validation errors
    package static let unreachable: Int32 = 69 // EX_UNAVAILABLE
    package static let forbidden: Int32 = 77 // EX_NOPERM

    /// The status for an API error code.
    package static func forCode(_ code: String) -> Int32 {
        switch code {
        case "not_found": notEnrolled
        case "needs_reauth", "invalid_credentials", "interaction_required", "account_locked": needsSignIn
        case "temporarily_unavailable", "rate_limited", "upstream_error": temporarilyUnavailable
        case "bad_request", "unknown_scope": usage
        case "forbidden": forbidden
        default: failure
        }
    }
}

/// An error tokenctl reports itself: `tokenctl: <message>` and the hint on stderr, then exit.
package struct Failure: Error, Sendable, Hashable {
    package var message: String
    package var hint: String?
    package var exitStatus: Int32

    package init(_ message: String, hint: String? = nil, exitStatus: Int32 = ExitStatus.failure) {
        self.message = message
        self.hint = hint
        self.exitStatus = exitStatus
    }

    package init(_ error: BrokerClientError) {
        switch error {
        case .unreachable(_, let reason):
            let hint =
                reason.contains("ermission denied")
                ? "The socket is for the daemon's client group; ask an admin to add you to it."
                : "Is tokenbrokerd running? Pass --socket PATH or set \(BrokerDefaults.socketEnvironmentVariable) to use another socket."
            self.init(error.description, hint: hint, exitStatus: ExitStatus.unreachable)
        case .api(_, let code, _, let hint):
            self.init(error.description, hint: hint, exitStatus: ExitStatus.forCode(code))
        case .protocolError:
            self.init(error.description, exitStatus: ExitStatus.failure)
        }
    }

    /// How tokenctl reports an error from a command's work: a `BrokerClientError` or a `Failure`.
    /// nil for any other error (ArgumentParser's own, such as a validation error: 64), which
    /// passes through.
    package init?(reporting error: any Error) {
        switch error {
        case let error as BrokerClientError: self.init(error)
        case let failure as Failure: self = failure
        default: return nil
        }
    }

    /// What goes to standard error: `tokenctl: <message>`, then the hint on its own line.
    package var report: String {
        var text = "tokenctl: \(message)\n"
        if let hint { text += "\(hint)\n" }
        return text
    }
}
