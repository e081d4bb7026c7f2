import BrokerCore
import Foundation

/// An (account, credential kind) pair: the unit the refresh engine schedules.
public struct CredentialKey: Hashable, Sendable {
    public var account: AccountName
    public var kind: CredentialKind

    public init(account: AccountName, kind: CredentialKind) {
        self.account = account
        self.kind = kind
    }
}

/// What the engine knows of one credential of one account.
struct CredentialRuntime {
    var credential: Credential?
    /// The expiry, formatted once when the credential was obtained.
    var expiresAtText = ""
    /// When the scheduler next refreshes (or retries) it.
    var dueAt: Date
    var lastRefresh: Date?
    var lastAttempt: Date?
    var failures = 0
    var lastError: BrokerError?
    var backoffUntil: Date?

    init(dueAt: Date) { self.dueAt = dueAt }
}

/// What the engine knows of one account. The refresh token, password and cookies are the only
/// copies besides the store's.
struct AccountRuntime {
    var realm: String
    var login: String
    var state: AccountState
    var stateReason: String?
    var refreshToken: Secret?
    var password: Secret?
    var ticketMethod: TicketMethod
    var credentials: [CredentialKind: CredentialRuntime]
    /// Why the cookie-based credentials cannot be had, once silent sign-in stopped working.
    var cookiesLost: String?
    /// A refresh result the store has not accepted yet (for example, a full disk). It is written
    /// before this account refreshes again.
    var unsaved: (token: AccessToken, rotated: Secret?, cookies: Secret?)?
    /// When to try writing `unsaved` again.
    var retrySaveAt: Date = .distantPast

    var cookies: Credential? { credentials[.cookies]?.credential }

    /// The kinds this account keeps fresh, given the configured scopes.
    func kinds(scopes: [Scope]) -> [CredentialKind] {
        var kinds = scopes.map(CredentialKind.scope)
        if scopes.contains(.skype) { kinds.append(.skypetoken) }
        if (cookies != nil || password != nil) && cookiesLost == nil { kinds += [.cookies, .uic] }
        if ticketMethod == .rst && password != nil { kinds.append(.ticket) }
        return kinds
    }

    /// Why this account cannot have a credential of this kind, with the command that fixes it.
    func unavailable(_ kind: CredentialKind, scopes: [Scope]) -> BrokerError? {
        switch kind {
        case .scope(let scope):
            return scopes.contains(scope) ? nil : BrokerError(.unknownScope, "scope \(scope.alias) is not kept fresh by this daemon")
        case .skypetoken:
            return scopes.contains(.skype) ? nil : BrokerError(.credentialUnavailable, "the skype scope is not kept fresh by this daemon")
        case .cookies, .uic:
            if let lost = cookiesLost {
                return BrokerError(.credentialUnavailable, "\(kind.name) needs the session cookies: \(lost)", hint: "tokenctl login \(login)")
            }
            if cookies == nil && password == nil {
                return BrokerError(
                    .credentialUnavailable, "\(kind.name) needs the session cookies (MSPAuth, MSPProf, WLSSC), and this account has none",
                    hint: "tokenctl login \(login), or tokenctl login --browser \(login) --cookies-stdin")
            }
            return nil
        case .ticket:
            if password == nil {
                return BrokerError(
                    .credentialUnavailable, "an RST ticket needs the stored password, and this account has none",
                    hint: "tokenctl login \(login) --store-password --ticket-method rst")
            }
            return nil
        }
    }
}

/// Work the scheduler hands to a task.
enum Job: Sendable {
    case refresh(CredentialKey, realm: String)
    case persist(AccountName)

    var account: AccountName {
        switch self {
        case .refresh(let key, _): key.account
        case .persist(let name): name
        }
    }
}

/// The engine's whole mutable state, behind one lock.
struct EngineState {
    var accounts: [AccountName: AccountRuntime] = [:]
    /// Realms whose endpoints are resting after a 429, until when.
    var restUntil: [String: Date] = [:]
    /// Accounts with a job running: refreshes of one account are serialized.
    var running: Set<AccountName> = []
    /// Credentials a read is waiting for.
    var urgent: Set<CredentialKey> = []
    var waiters: [CredentialKey: [UInt64: CheckedContinuation<Void, Never>]] = [:]
    var nextWaiterID: UInt64 = 0
    var stopping = false

    /// Picks what to run now, at most `maxConcurrentRefreshes` jobs in all, and says when to look again.
    mutating func pickJobs(now: Date, policy: RefreshPolicy, scopes: [Scope]) -> (jobs: [Job], wake: Date) {
        var wake = now.addingTimeInterval(policy.wakeInterval)
        var jobs: [Job] = []
        var capacity = policy.maxConcurrentRefreshes - running.count
        guard !stopping else { return ([], wake) }
        for (name, account) in accounts where account.state == .active && !running.contains(name) {
            guard capacity > 0 else { break }
            if account.unsaved != nil {
                if account.retrySaveAt <= now {
                    jobs.append(.persist(name))
                    running.insert(name)
                    capacity -= 1
                    continue
                }
                wake = min(wake, account.retrySaveAt)
            }
            guard account.refreshToken != nil else { continue }
            if let rest = restUntil[account.realm], rest > now {
                wake = min(wake, rest)
                continue
            }
            var best: (CredentialKind, Date)?
            for kind in account.kinds(scopes: scopes) {
                guard let runtime = account.credentials[kind] else { continue }
                var due = runtime.dueAt
                if urgent.contains(CredentialKey(account: name, kind: kind)) {
                    due = min(due, runtime.lastAttempt.map { $0.addingTimeInterval(policy.urgentRetryInterval) } ?? now)
                }
                if due <= now {
                    if best == nil || due < best!.1 { best = (kind, due) }
                } else {
                    wake = min(wake, due)
                }
            }
            if let (kind, _) = best {
                jobs.append(.refresh(CredentialKey(account: name, kind: kind), realm: account.realm))
                running.insert(name)
                capacity -= 1
            }
        }
        return (jobs, wake)
    }

    /// Resumes every read waiting on the credential; they look at the cache again.
    mutating func takeWaiters(_ key: CredentialKey) -> [CheckedContinuation<Void, Never>] {
        guard let waiting = waiters.removeValue(forKey: key) else { return [] }
        return Array(waiting.values)
    }
}
