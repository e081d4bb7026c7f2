#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Every refresh decision of the broker, as a value: which credential is due, what a result or a
/// failure changes, which credentials depend on which, how long to back off, when a realm's
/// endpoint rests after a 429, and when an account needs a new sign-in.
///
/// It does no I/O and reads no clock: the executor (BrokerEngine) passes the wall-clock time and
/// a source of random samples in 0..<1 to every call, runs the `Job`s it hands out, reports each
/// `Outcome`, and carries out the `Effect`s it gets back, in order. docs/ARCHITECTURE.md describes
/// the states, jobs and effects, and how to add a credential kind.
package struct RefreshMachine: Sendable {
    package internal(set) var policy: RefreshPolicy
    /// The scopes kept fresh for every account.
    package internal(set) var scopes: [Scope]
    /// The configured realms: an account of another realm fails its refreshes.
    package internal(set) var realms: Set<String>
    /// The `rst` realms, with the sites their accounts ask RST.srf for.
    package internal(set) var rstRealms: [String: [RSTSite]] = [:]
    /// The realms that name SkyLogin servers.
    package internal(set) var skyloginRealms: Set<String> = []
    package internal(set) var accounts: [AccountName: AccountSchedule] = [:]
    /// Endpoints resting after a 429, until when.
    package internal(set) var rests: [RestKey: Date] = [:]
    /// Accounts with a job running: the work of one account is serialized.
    package internal(set) var running: Set<AccountName> = []
    /// Credentials a read waits for, with how many reads wait.
    package internal(set) var waiting: [CredentialKey: Int] = [:]
    /// Why writes to the store fail, while they do: the daemon is degraded but serving.
    package internal(set) var storageFailure: String?
    package internal(set) var stopping = false
    /// When `due` next has something to hand out (at the latest `policy.wakeInterval` after the
    /// last call), so that the executor can sleep until then.
    package internal(set) var nextWake: Date = .distantPast

    /// The backlog: every credential's next refresh point, by time. See RefreshMachine+Backlog.swift.
    var backlog = DueHeap()
    /// How many backlog entries have been made: their order among equal times.
    var collected: UInt64 = 0
    /// About how many backlog entries are stale (their credential's time changed since).
    var staleEntries = 0
    /// How many entries the backlog holds, stale ones included.
    package var backlogCount: Int { backlog.count }
    /// How many entries the backlog has room for before its array grows.
    package var backlogCapacity: Int { backlog.capacity }
    /// The backlog is rebuilt from every account at the next `due` (at start, after a reload).
    var scanNeeded = true
    var dirty: Set<AccountName> = []
    var nextGeneration: UInt64 = 0

    package struct RestKey: Hashable, Sendable {
        package var realm: String
        package var endpoint: Endpoint
    }

    /// Realms given by name only sign in with OAuth.
    package init(policy: RefreshPolicy = RefreshPolicy(), scopes: [Scope] = Scope.allCases, realms: Set<String>) {
        self.policy = policy
        self.scopes = scopes
        self.realms = realms
    }

    package init(policy: RefreshPolicy = RefreshPolicy(), scopes: [Scope] = Scope.allCases, realms: [Realm]) {
        self.init(policy: policy, scopes: scopes, realms: Set(realms.map(\.name)))
        self.rstRealms = Self.rstRealms(realms)
        self.skyloginRealms = Set(realms.filter { !$0.skyloginServers.isEmpty }.map(\.name))
    }

    static func rstRealms(_ realms: [Realm]) -> [String: [RSTSite]] {
        Dictionary(realms.filter { $0.signIn == .rst }.map { ($0.name, $0.rstSites) }, uniquingKeysWith: { a, _ in a })
    }

    // MARK: - Accounts in and out

    /// Adds an account (loaded at start, or lazily later), or replaces it after a new sign-in:
    /// every credential it keeps is scheduled, the tokens it brings are served until their
    /// refresh point.
    /// `fromStore`: the account is loaded at start (not enrolled now). A skypetoken or UIC it has
    /// no valid one of is then fetched right after the credential it is made from is next
    /// refreshed (a read asks for it at once), not all at start: thousands of accounts loaded
    /// together would otherwise fetch thousands at once, and again when their tokens refresh.
    package mutating func add(_ seed: AccountSeed, now: Date, random: () -> Double, fromStore: Bool = false)
        -> [Effect]
    {
        // The login is most often the account's name: then it shares the name's storage instead
        // of a string of its own (48 bytes an account).
        var account = AccountSchedule(
            realm: seed.realm, login: seed.login == seed.name.rawValue ? seed.name.rawValue : seed.login,
            state: seed.state, stateReason: seed.stateReason,
            // Loaded from the store, the refresh token stays there: memory keeps only what the
            // store does not have yet.
            refreshToken: fromStore ? nil : seed.refreshToken,
            password: seed.password, ticketMethod: seed.ticketMethod)
        account.refreshTokenStored = fromStore && seed.refreshToken != nil
        account.rstSites = rstRealms[seed.realm]
        account.missingSites = seed.missingSites
        account.loginKind = seed.loginKind
        account.loginHash = seed.loginHash
        account.skyloginServers = skyloginRealms.contains(seed.realm)
        account.skyloginKey = seed.skylogin?.proofKey ?? seed.skyloginKey
        if let cookies = seed.cookies {
            // Cookies loaded from the store have no recorded expiry: refresh them soon.
            let expires = cookies.expiresAt ?? now.addingTimeInterval(3600)
            var schedule = CredentialSchedule(
                dueAt: cookies.expiresAt == nil
                    ? now : policy.nextRefresh(obtainedAt: now, expiresAt: expires, random: random()))
            schedule.credential = Credential(value: cookies.value, obtainedAt: now, expiresAt: expires)
            account.credentials[.cookies] = schedule
        }
        for kind in account.kinds(scopes: scopes) where account.credentials[kind] == nil {
            account.credentials[kind] = CredentialSchedule(dueAt: now)
        }
        for token in seed.accessTokens where token.expiresAt > now && account.credentials[.scope(token.scope)] != nil {
            account.credentials[.scope(token.scope)] = fresh(Credential(token), random: random)
        }
        for (address, ticket) in seed.sites where ticket.expiresAt > now && account.credentials[.site(address)] != nil {
            account.credentials[.site(address)] = fresh(ticket, random: random)
        }
        if let skylogin = seed.skylogin, skylogin.expiresAt > now, account.credentials[.skylogin] != nil {
            account.credentials[.skylogin] = fresh(skylogin, random: random)
        }
        for (kind, credential) in seed.derived where credential.expiresAt > now && account.credentials[kind] != nil {
            account.credentials[kind] = fresh(credential, random: random)
        }
        if fromStore {
            for (kind, parent) in [(CredentialKind.skypetoken, CredentialKind.scope(.skype)), (.uic, .cookies)]
            where account.credentials[kind]?.credential == nil {
                if let parent = account.credentials[parent], parent.credential != nil {
                    account.credentials[kind]?.dueAt = parent.dueAt
                }
            }
        }
        let previous = accounts[seed.name]
        // The replaced account's backlog entry, if it had one, is stale from now on.
        if previous?.queuedAt != nil { staleEntries += 1 }
        account.generation = nextGeneration
        nextGeneration += 1
        accounts[seed.name] = account
        dirty.insert(seed.name)
        var effects: [Effect] = [.publishAccount(seed.name, account.view(scopes: scopes))]
        for kind in Set(account.credentials.keys).union(previous?.credentials.keys ?? []) {
            effects.append(
                .publish(CredentialKey(account: seed.name, kind: kind), account.credentials[kind]?.credential))
        }
        return effects
    }

    /// Forgets an account. Reads waiting on it are told it is gone.
    package mutating func remove(_ name: AccountName) -> [Effect] {
        guard let removed = accounts.removeValue(forKey: name) else { return [] }
        if removed.queuedAt != nil { staleEntries += 1 }
        var effects: [Effect] = [.publishAccount(name, nil)]
        for key in waiting.keys where key.account == name {
            waiting[key] = nil
            let error = BrokerError(.notFound, "no account named \(name)", hint: "tokenctl accounts lists them")
            effects.append(.deliver(key, .failed(error, current: nil, final: true)))
        }
        return effects
    }

    /// Replaces realms, scopes and policy; credentials already held are kept, new kinds are due now.
    /// A realm's sign-in kind does not change while it has accounts (the daemon refuses such a
    /// reload); its sites may.
    package mutating func reconfigure(policy: RefreshPolicy, scopes: [Scope], realms: [Realm], now: Date) -> [Effect] {
        self.policy = policy
        self.scopes = scopes
        self.realms = Set(realms.map(\.name))
        self.rstRealms = Self.rstRealms(realms)
        self.skyloginRealms = Set(realms.filter { !$0.skyloginServers.isEmpty }.map(\.name))
        var effects: [Effect] = []
        for name in Array(accounts.keys) {
            guard var account = accounts[name] else { continue }
            if account.rstSites != rstRealms[account.realm] { account.missingSites = [] }
            account.rstSites = rstRealms[account.realm]
            account.skyloginServers = skyloginRealms.contains(account.realm)
            for kind in account.kinds(scopes: scopes) where account.credentials[kind] == nil {
                account.credentials[kind] = CredentialSchedule(dueAt: now)
            }
            accounts[name] = account
            effects.append(.publishAccount(name, account.view(scopes: scopes)))
        }
        scanNeeded = true
        return effects
    }

    /// Stops handing out jobs; those running may still report.
    package mutating func stop() { stopping = true }

    // MARK: - Reads

    /// The credential held now, served or not (maybe expired).
    package func credential(_ key: CredentialKey) -> Credential? {
        accounts[key.account]?.credentials[key.kind]?.credential
    }

    /// A read waits for the next attempt on `key`: the credential becomes urgent. When the
    /// answer is already known (the credential was refreshed since the read looked, or cannot be
    /// had at all), it comes back at once and nothing waits.
    package mutating func wait(for key: CredentialKey, minValid: TimeInterval, now: Date) -> AttemptResult? {
        guard let account = accounts[key.account] else {
            return .failed(
                BrokerError(.notFound, "no account named \(key.account)", hint: "tokenctl accounts lists them"),
                current: nil, final: true)
        }
        if account.state == .needsReauth {
            return .failed(
                Self.needsReauth(key.account, account.stateReason), current: account.credentials[key.kind]?.credential,
                final: true)
        }
        if let error = account.unavailable(key.kind, scopes: scopes) {
            return .failed(error, current: nil, final: true)
        }
        if let credential = account.credentials[key.kind]?.credential,
            credential.expiresAt.timeIntervalSince(now) >= max(policy.safetyMargin, minValid)
        {
            return .refreshed(credential)
        }
        waiting[key, default: 0] += 1
        dirty.insert(key.account)
        return nil
    }

    /// Why the account cannot have this kind of credential, if it cannot (with the command that
    /// fixes it): what a read of it is answered.
    package func unavailable(_ key: CredentialKey) -> BrokerError? {
        accounts[key.account]?.unavailable(key.kind, scopes: scopes)
    }

    /// A read stopped waiting (its time ran out, or it was cancelled).
    package mutating func stopWaiting(for key: CredentialKey) {
        if let count = waiting[key] { waiting[key] = count > 1 ? count - 1 : nil }
    }

    static func needsReauth(_ name: AccountName, _ reason: String?) -> BrokerError {
        BrokerError(
            .needsReauth, "account \(name) needs a new sign-in: \(reason ?? "sign-in required")", hint: "tokenctl login"
        )
    }

    /// The rest of the endpoint a credential's refresh calls, if it is resting.
    package func rest(realm: String, kind: CredentialKind) -> Date? {
        rests[RestKey(realm: realm, endpoint: Self.endpoint(of: kind))]
    }

    static func endpoint(of kind: CredentialKind) -> Endpoint {
        switch kind {
        case .scope: .token
        case .skypetoken: .skypetoken
        case .cookies: .signIn
        case .uic: .userInitialization
        case .ticket, .site: .rst
        case .skylogin: .skylogin
        }
    }

    /// The earliest scheduled refresh of an active account.
    package func nextRefresh() -> Date? {
        // A plain pass: it runs for every status report, over every account, and should make no
        // arrays as large as the fleet.
        var earliest: Date?
        for account in accounts.values where account.state == .active {
            for (_, schedule) in account.credentials where earliest.map({ schedule.dueAt < $0 }) ?? true {
                earliest = schedule.dueAt
            }
        }
        return earliest
    }

    // MARK: - Helpers

    /// The schedule of a credential just obtained: due at its refresh point (or at the server's
    /// own refresh deadline, or the UIC's point of its issue-to-expiry span, when earlier).
    func fresh(_ credential: Credential, random: () -> Double) -> CredentialSchedule {
        var dueAt = policy.nextRefresh(
            obtainedAt: credential.obtainedAt, expiresAt: credential.expiresAt, random: random())
        if let issuedAt = credential.issuedAt {
            dueAt = min(
                dueAt,
                issuedAt.addingTimeInterval(policy.refreshPoint * credential.expiresAt.timeIntervalSince(issuedAt)))
        }
        if let refreshBy = credential.refreshBy { dueAt = min(dueAt, refreshBy) }
        var schedule = CredentialSchedule(dueAt: dueAt)
        schedule.credential = credential
        schedule.lastRefresh = credential.obtainedAt
        return schedule
    }
}
