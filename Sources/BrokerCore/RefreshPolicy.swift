#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// When to refresh, how long to wait after failures, and what a read may be served.
///
/// Pure decisions: every function takes the current wall-clock time and, where it jitters,
/// a random sample in 0..<1, so tests can call it with fixed values.
package struct RefreshPolicy: Sendable, Equatable {
    /// Fraction of a token's lifetime after which it is refreshed.
    package var refreshPoint = 0.75
    /// Plus or minus this fraction of the lifetime is added to the refresh point, to spread refreshes.
    package var jitter = 0.05
    /// A token with less than this left is not served from the cache without trying a refresh first.
    package var safetyMargin: TimeInterval = 60
    /// First retry delay after a transient failure; doubles with each failure.
    package var backoffStart: TimeInterval = 1
    package var backoffCap: TimeInterval = 300
    /// How long a read waits for a refresh it triggered.
    package var readWait: TimeInterval = 5
    /// How long a 429 without Retry-After rests the endpoint.
    package var rateLimitRest: TimeInterval = 300
    /// At most this many refreshes run at once, across accounts.
    package var maxConcurrentRefreshes = 8
    /// The scheduler re-reads the wall clock at least this often, so a suspend or a clock jump
    /// is noticed within this bound.
    package var wakeInterval: TimeInterval = 30
    /// While reads wait on a scope with no valid token, retries come at least this often.
    package var urgentRetryInterval: TimeInterval = 0.5

    package init() {}

    /// When a token obtained at `obtainedAt` and expiring at `expiresAt` is refreshed next.
    package func nextRefresh(obtainedAt: Date, expiresAt: Date, random: Double) -> Date {
        let lifetime = max(0, expiresAt.timeIntervalSince(obtainedAt))
        let point = refreshPoint + jitter * (2 * random - 1)
        let planned = obtainedAt.addingTimeInterval(lifetime * min(max(point, 0.05), 0.99))
        // Never later than the safety margin before expiry, unless that is before obtainedAt.
        let latest = expiresAt.addingTimeInterval(-safetyMargin)
        return latest > obtainedAt ? min(planned, latest) : planned
    }

    /// Exponential backoff with jitter (50-100% of the step), capped, and never past expiry:
    /// while a token is still valid, the next try comes before it runs out.
    package func retryAfterFailure(failures: Int, now: Date, expiresAt: Date?, random: Double) -> Date {
        let step = min(backoffCap, backoffStart * pow(2, Double(max(0, failures - 1))))
        var delay = step * (0.5 + 0.5 * random)
        if let expiresAt {
            let left = expiresAt.timeIntervalSince(now)
            if left > 0 { delay = min(delay, max(backoffStart / 2, left / 2)) }
        }
        return now.addingTimeInterval(max(0.05, delay))
    }

    /// How long a 429 rests the endpoint: Retry-After when given, else the default.
    package func rateLimitRest(retryAfter: TimeInterval?, now: Date) -> Date {
        now.addingTimeInterval(max(0, retryAfter ?? rateLimitRest))
    }

    /// A cached token can be served without a refresh.
    package func isFresh(_ token: AccessToken, now: Date, minValid: TimeInterval) -> Bool {
        token.expiresAt.timeIntervalSince(now) >= max(safetyMargin, minValid)
    }

    /// A token that may still be served after a refresh attempt failed: not expired, and with
    /// at least what the client asked for left.
    package func isServable(_ token: AccessToken, now: Date, minValid: TimeInterval) -> Bool {
        let left = token.expiresAt.timeIntervalSince(now)
        return left > 0 && left >= minValid
    }
}

/// Why a refresh did not produce a token, as far as the policy needs to know.
package enum RefreshFailure: Error, Sendable, Equatable {
    /// `invalid_grant`: only a new sign-in helps.
    case grantRevoked(String)
    /// The server refused the stored password (RST.srf's `wsse:FailedAuthentication`, a
    /// Passport 1.4 `da-status=failed`): as final as a revoked grant. `by` names the service,
    /// `reason` is what the server said.
    case passwordRefused(by: String, reason: String)
    /// HTTP 429: rest the endpoint, for every account of the realm.
    case rateLimited(retryAfter: TimeInterval?)
    /// 5xx, timeouts, resets, malformed replies: retry with backoff.
    case transient(String)
    /// Any other refusal (invalid_scope, unauthorized_client, ...): retry with backoff, and show it.
    case rejected(code: String, description: String)

    /// The message for status and errors. Never holds token material.
    package var message: String {
        switch self {
        case .grantRevoked(let description): "the grant was revoked or has expired: \(description)"
        case .passwordRefused(let by, let reason): "\(by) refused the stored password (\(reason))"
        case .rateLimited(let retryAfter):
            "rate limited by the server" + (retryAfter.map { " (Retry-After \(Int($0)) s)" } ?? "")
        case .transient(let description): description
        case .rejected(let code, let description): "\(code): \(description)"
        }
    }

    package var brokerError: BrokerError {
        switch self {
        case .grantRevoked, .passwordRefused:
            BrokerError(.needsReauth, message, hint: "sign in again with tokenctl login")
        case .rateLimited: BrokerError(.rateLimited, message)
        case .transient: BrokerError(.temporarilyUnavailable, message)
        case .rejected: BrokerError(.upstreamError, message)
        }
    }
}
