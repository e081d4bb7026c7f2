import ArgumentParser
import BrokerAPI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// tokenctl's exit statuses (listed in `tokenctl --help` and docs/API.md).
enum ExitStatus {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    static let notEnrolled: Int32 = 3
    static let needsSignIn: Int32 = 4
    static let temporarilyUnavailable: Int32 = 5
    static let usage: Int32 = 64  // EX_USAGE, as ArgumentParser's own validation errors
    static let unreachable: Int32 = 69  // EX_UNAVAILABLE
    static let forbidden: Int32 = 77  // EX_NOPERM

    /// The status for an API error code.
    static func forCode(_ code: String) -> Int32 {
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
struct Failure: Error {
    var message: String
    var hint: String?
    var exitStatus: Int32

    init(_ message: String, hint: String? = nil, exitStatus: Int32 = ExitStatus.failure) {
        self.message = message
        self.hint = hint
        self.exitStatus = exitStatus
    }

    init(_ error: BrokerClientError) {
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
}

/// Runs a command's work; reports a `BrokerClientError` or a `Failure` on stderr and exits
/// with its status. ArgumentParser's own errors (validation: 64) pass through.
func reporting(_ work: () throws -> Void) throws {
    do {
        try work()
    } catch let error as BrokerClientError {
        throw report(Failure(error))
    } catch let failure as Failure {
        throw report(failure)
    }
}

private func report(_ failure: Failure) -> ExitCode {
    var text = "tokenctl: \(failure.message)\n"
    if let hint = failure.hint { text += "\(hint)\n" }
    writeStandardError(text)
    return ExitCode(failure.exitStatus)
}

/// Writes to fd 2 directly (no shared stdio state).
func writeStandardError(_ text: String) {
    let bytes = Array(text.utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 && errno == EINTR { continue }
        guard written > 0 else { return }
        offset += written
    }
}
