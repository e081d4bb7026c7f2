import BrokerCore
import Foundation

/// An (account, scope) pair: the unit the refresh engine schedules.
public struct ScopeKey: Hashable, Sendable {
    public var account: AccountName
    public var scope: Scope

    public init(account: AccountName, scope: Scope) {
        self.account = account
        self.scope = scope
    }
}

/// What the engine knows of one scope of one account.
struct ScopeRuntime {
    var token: AccessToken?
    /// The token's expiry, formatted once when it was refreshed.
    var expiresAtText = ""
    /// When the scheduler next refreshes (or retries) this scope.
    var dueAt: Date
    var lastRefresh: Date?
    var lastAttempt: Date?
    var failures = 0
    var lastError: BrokerError?
    var backoffUntil: Date?
}

/// What the engine knows of one account; the refresh token is the only copy besides the store's.
struct AccountRuntime {
    var realm: String
    var login: String
    var state: AccountState
    var stateReason: String?
    var refreshToken: Secret?
    var scopes: [Scope: ScopeRuntime]
    /// A refresh result the store has not accepted yet (for example, a full disk). It is written
    /// before this account refreshes again.
    var unsaved: (token: AccessToken, rotated: Secret?)?
    var hasPassword: Bool
    var hasCookies: Bool
}

/// Work the scheduler hands to a task.
enum Job: Sendable {
    case refresh(ScopeKey, realm: String, refreshToken: Secret)
    case persist(AccountName)

    var account: AccountName {
        switch self {
        case .refresh(let key, _, _): key.account
        case .persist(let name): name
        }
    }
}

/// The engine's whole mutable state, behind one lock.
struct EngineState {
    var accounts: [AccountName: AccountRuntime] = [:]
    /// Realms whose token endpoint is resting after a 429, until when.
    var restUntil: [String: Date] = [:]
    /// Accounts with a job running: refreshes of one account are serialized.
    var running: Set<AccountName> = []
    /// Scopes a read is waiting for.
    var urgent: Set<ScopeKey> = []
    var waiters: [ScopeKey: [UInt64: CheckedContinuation<Void, Never>]] = [:]
    var nextWaiterID: UInt64 = 0
    var stopping = false

    /// Picks what to run now, at most `limit` jobs in all, and says when to look again.
    mutating func pickJobs(now: Date, policy: RefreshPolicy, scopes: [Scope]) -> (jobs: [Job], wake: Date) {
        var wake = now.addingTimeInterval(policy.wakeInterval)
        var jobs: [Job] = []
        var capacity = policy.maxConcurrentRefreshes - running.count
        guard !stopping else { return ([], wake) }
        for (name, account) in accounts where account.state == .active && !running.contains(name) {
            guard capacity > 0 else { break }
            if account.unsaved != nil {
                jobs.append(.persist(name))
                running.insert(name)
                capacity -= 1
                continue
            }
            guard let refreshToken = account.refreshToken else { continue }
            if let rest = restUntil[account.realm], rest > now {
                wake = min(wake, rest)
                continue
            }
            var best: (Scope, Date)?
            for scope in scopes {
                guard let runtime = account.scopes[scope] else { continue }
                var due = runtime.dueAt
                if urgent.contains(ScopeKey(account: name, scope: scope)) {
                    due = min(due, runtime.lastAttempt.map { $0.addingTimeInterval(policy.urgentRetryInterval) } ?? now)
                }
                if due <= now {
                    if best == nil || due < best!.1 { best = (scope, due) }
                } else {
                    wake = min(wake, due)
                }
            }
            if let (scope, _) = best {
                jobs.append(.refresh(ScopeKey(account: name, scope: scope), realm: account.realm, refreshToken: refreshToken))
                running.insert(name)
                capacity -= 1
            }
        }
        return (jobs, wake)
    }

    /// Resumes every read waiting on the scope; they look at the cache again.
    mutating func takeWaiters(_ key: ScopeKey) -> [CheckedContinuation<Void, Never>] {
        Array(waiters.removeValue(forKey: key)?.values ?? [:].values)
    }
}
