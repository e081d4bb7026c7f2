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

    /// Work due soon, by due time: credentials (and unsaved results) due before `nextScan`, found
    /// by the last full scan and kept up to date for the accounts marked `dirty` since. Passes
    /// between scans take their jobs from here, so that finishing one refresh does not mean
    /// looking at every account again.
    var backlog: [Due] = []
    /// When the backlog's horizon ends and the next pass scans every account.
    var nextScan = Date.distantPast
    /// The earliest due time past the horizon.
    var beyond = Date.distantFuture
    /// Force a full scan at the next pass (accounts loaded, configuration changed).
    var scanNeeded = true
    /// Accounts whose schedule may have changed since the last pass.
    var dirty: Set<AccountName> = []

    /// Something to do for an account at a time: refresh a credential, or (`kind` nil) write a
    /// result the store did not take.
    struct Due {
        var at: Date
        var account: AccountName
        var kind: CredentialKind?
    }

    /// How far ahead a full scan looks.
    static let scanHorizon: TimeInterval = 2

    /// When the credential should be refreshed: its schedule, or sooner for a read waiting on it.
    func effectiveDue(_ name: AccountName, _ runtime: CredentialRuntime, _ kind: CredentialKind, now: Date, policy: RefreshPolicy) -> Date {
        var due = runtime.dueAt
        if !urgent.isEmpty, urgent.contains(CredentialKey(account: name, kind: kind)) {
            due = min(due, runtime.lastAttempt.map { $0.addingTimeInterval(policy.urgentRetryInterval) } ?? now)
        }
        return due
    }

    /// Appends one account's work (nothing for an account that is not refreshing), to the backlog
    /// when due before `horizon`, else to `beyond`.
    private mutating func collect(
        _ name: AccountName, _ account: AccountRuntime, horizon: Date, now: Date, policy: RefreshPolicy, scopes: [Scope], into due: inout [Due]
    ) {
        guard account.state == .active else { return }
        if account.unsaved != nil {
            if account.retrySaveAt < horizon { due.append(Due(at: account.retrySaveAt, account: name, kind: nil)) } else { beyond = min(beyond, account.retrySaveAt) }
        }
        guard account.refreshToken != nil else { return }
        for kind in account.kinds(scopes: scopes) {
            guard let runtime = account.credentials[kind] else { continue }
            let at = effectiveDue(name, runtime, kind, now: now, policy: policy)
            if at < horizon { due.append(Due(at: at, account: name, kind: kind)) } else { beyond = min(beyond, at) }
        }
    }

    /// Brings the backlog up to date: a full scan when the horizon has passed (or the wall clock
    /// went back), else only the dirty accounts.
    private mutating func updateBacklog(now: Date, policy: RefreshPolicy, scopes: [Scope]) {
        if scanNeeded || now >= nextScan || nextScan.timeIntervalSince(now) > Self.scanHorizon {
            scanNeeded = false
            dirty.removeAll(keepingCapacity: true)
            nextScan = now.addingTimeInterval(Self.scanHorizon)
            beyond = .distantFuture
            var due: [Due] = []
            for (name, account) in accounts {
                collect(name, account, horizon: nextScan, now: now, policy: policy, scopes: scopes, into: &due)
            }
            due.sort { $0.at < $1.at }
            backlog = due
            return
        }
        guard !dirty.isEmpty else { return }
        let changed = dirty
        dirty.removeAll(keepingCapacity: true)
        backlog.removeAll { changed.contains($0.account) }
        var due: [Due] = []
        for name in changed {
            guard let account = accounts[name] else { continue }
            collect(name, account, horizon: nextScan, now: now, policy: policy, scopes: scopes, into: &due)
        }
        for item in due {
            // Binary search for the place that keeps the backlog sorted.
            var low = 0
            var high = backlog.count
            while low < high {
                let mid = (low + high) / 2
                if backlog[mid].at <= item.at { low = mid + 1 } else { high = mid }
            }
            backlog.insert(item, at: low)
        }
    }

    /// Picks what to run now, at most `maxConcurrentRefreshes` jobs in all, the earliest due
    /// first and one per account, and says when to look again.
    mutating func pickJobs(now: Date, policy: RefreshPolicy, scopes: [Scope]) -> (jobs: [Job], wake: Date) {
        var wake = now.addingTimeInterval(policy.wakeInterval)
        var jobs: [Job] = []
        var capacity = policy.maxConcurrentRefreshes - running.count
        guard !stopping else { return ([], wake) }
        updateBacklog(now: now, policy: policy, scopes: scopes)
        wake = min(wake, beyond)
        var index = 0
        while index < backlog.count {
            let item = backlog[index]
            if item.at > now {
                wake = min(wake, item.at)
                break
            }
            guard capacity > 0 else { break }
            // Checked again: the entry may be out of date (a refresh done, an account gone).
            guard let account = accounts[item.account], account.state == .active else {
                backlog.remove(at: index)
                continue
            }
            // Its job finishing marks the account dirty, which brings this entry up to date.
            if running.contains(item.account) {
                index += 1
                continue
            }
            guard let kind = item.kind else {
                guard account.unsaved != nil, account.retrySaveAt <= now else {
                    backlog.remove(at: index)
                    continue
                }
                jobs.append(.persist(item.account))
                running.insert(item.account)
                capacity -= 1
                backlog.remove(at: index)
                continue
            }
            if let rest = restUntil[account.realm], rest > now {
                wake = min(wake, rest)
                index += 1
                continue
            }
            guard account.refreshToken != nil, let runtime = account.credentials[kind], account.kinds(scopes: scopes).contains(kind),
                effectiveDue(item.account, runtime, kind, now: now, policy: policy) <= now
            else {
                backlog.remove(at: index)
                continue
            }
            jobs.append(.refresh(CredentialKey(account: item.account, kind: kind), realm: account.realm))
            running.insert(item.account)
            capacity -= 1
            backlog.remove(at: index)
        }
        return (jobs, wake)
    }

    /// Resumes every read waiting on the credential; they look at the cache again.
    mutating func takeWaiters(_ key: CredentialKey) -> [CheckedContinuation<Void, Never>] {
        guard let waiting = waiters.removeValue(forKey: key) else { return [] }
        return Array(waiting.values)
    }
}
