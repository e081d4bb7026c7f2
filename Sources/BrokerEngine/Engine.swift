import BrokerCore
import BrokerStore
import Foundation
import LiveClient
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The refresh service: keeps every credential of every account fresh, serializes the work of
/// one account (its scopes share one rotating refresh token, and a silent sign-in replaces it),
/// runs accounts concurrently up to a cap, backs off on failures, rests a realm on 429, and lets
/// concurrent reads share one refresh.
///
/// Deadlines are wall-clock times from the server's answers; the scheduler sleeps on an injected
/// monotonic clock for at most `wakeInterval`, so a suspend or a clock jump is noticed.
public final class BrokerEngine: Service, Sendable {
    private let store: CredentialStore
    private let identity: LiveIdentityClient
    private let clock: MonotonicClock
    private let wallClock: @Sendable () -> Date
    private let logger: Logger
    private let state = NIOLockedValueBox(EngineState())
    private let configurationBox: NIOLockedValueBox<EngineConfiguration>
    private let wakeup = Wakeup()
    private let metrics = EngineMetrics()
    private let heartbeat = NIOLockedValueBox<Duration>(.zero)
    /// The last storage failure, while writes fail: the daemon is degraded but serving.
    private let storageFailure = NIOLockedValueBox<String?>(nil)

    /// Why writes to the store fail, while they do (a full disk, a read-only file system).
    public var degraded: String? { storageFailure.withLockedValue { $0 } }

    public init(
        configuration: EngineConfiguration, store: CredentialStore, identity: LiveIdentityClient,
        clock: MonotonicClock = .continuous, wallClock: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) throws(BrokerError) {
        self.configurationBox = NIOLockedValueBox(configuration)
        self.store = store
        self.identity = identity
        self.clock = clock
        self.wallClock = wallClock
        self.logger = logger
        try load()
    }

    public var configuration: EngineConfiguration { configurationBox.withLockedValue { $0 } }

    /// When the scheduler last went round its loop, on the monotonic clock: a health signal.
    public var lastSchedulerPass: Duration { heartbeat.withLockedValue { $0 } }

    /// The monotonic clock's reading now, to compare with `lastSchedulerPass`.
    public var monotonicNow: Duration { clock.now }

    /// Replaces realms, scopes and policy; stored tokens and connections are untouched.
    public func reconfigure(_ configuration: EngineConfiguration) {
        configurationBox.withLockedValue { $0 = configuration }
        let now = wallClock()
        state.withLockedValue { state in
            for name in Array(state.accounts.keys) {
                guard let account = state.accounts[name] else { continue }
                for kind in account.kinds(scopes: configuration.scopes) where account.credentials[kind] == nil {
                    state.accounts[name]?.credentials[kind] = CredentialRuntime(dueAt: now)
                }
            }
            state.scanNeeded = true
        }
        wakeup.signal()
    }

    public func now() -> Date { wallClock() }

    private func load() throws(BrokerError) {
        let loaded: [(StoredAccount, StoredCredentials)]
        do { loaded = try store.loadAll() } catch { throw Self.brokerError(error) }
        let now = wallClock()
        let configuration = self.configuration
        state.withLockedValue { state in
            for (account, credentials) in loaded {
                state.accounts[account.name] = makeRuntime(
                    realm: account.realm, login: account.login, state: account.state, reason: account.stateReason,
                    refreshToken: credentials.refreshToken, tokens: Array(credentials.accessTokens.values),
                    password: credentials.password, cookies: credentials.cookies.map { (value: $0, expiresAt: nil) },
                    ticketMethod: TicketMethod(rawValue: account.ticketMethod) ?? .oauth, now: now, configuration: configuration)
            }
        }
        logger.info("accounts loaded", metadata: ["broker.accounts": "\(loaded.count)"])
    }

    private func makeRuntime(
        realm: String, login: String, state: AccountState, reason: String?, refreshToken: Secret?, tokens: [AccessToken],
        password: Secret?, cookies: (value: Secret, expiresAt: Date?)?, ticketMethod: TicketMethod, now: Date,
        configuration: EngineConfiguration
    ) -> AccountRuntime {
        var account = AccountRuntime(
            realm: realm, login: login, state: state, stateReason: reason, refreshToken: refreshToken, password: password,
            ticketMethod: ticketMethod, credentials: [:])
        let policy = configuration.policy
        if let cookies {
            // Cookies loaded from the store have no recorded expiry: refresh them soon.
            let expires = cookies.expiresAt ?? now.addingTimeInterval(3600)
            var runtime = CredentialRuntime(dueAt: cookies.expiresAt == nil ? now : policy.nextRefresh(obtainedAt: now, expiresAt: expires, random: .random(in: 0..<1)))
            runtime.credential = Credential(value: cookies.value, obtainedAt: now, expiresAt: expires)
            runtime.expiresAtText = Self.rfc3339(expires)
            account.credentials[.cookies] = runtime
        }
        for kind in account.kinds(scopes: configuration.scopes) where account.credentials[kind] == nil {
            account.credentials[kind] = CredentialRuntime(dueAt: now)
        }
        for token in tokens where token.expiresAt > now && account.credentials[.scope(token.scope)] != nil {
            account.credentials[.scope(token.scope)] = fresh(Credential(token), now: now, policy: policy)
        }
        return account
    }

    /// The runtime of a credential just obtained: scheduled at the refresh point.
    private func fresh(_ credential: Credential, now: Date, policy: RefreshPolicy) -> CredentialRuntime {
        var runtime = CredentialRuntime(
            dueAt: policy.nextRefresh(obtainedAt: credential.obtainedAt, expiresAt: credential.expiresAt, random: .random(in: 0..<1)))
        if let refreshBy = credential.refreshBy { runtime.dueAt = min(runtime.dueAt, refreshBy) }
        runtime.credential = credential
        runtime.expiresAtText = Self.rfc3339(credential.expiresAt)
        runtime.lastRefresh = credential.obtainedAt
        return runtime
    }

    // MARK: - Service

    public func run() async throws {
        try await withGracefulShutdownHandler {
            await self.schedule()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops scheduling; running refreshes get a bounded time to finish and commit.
    public func stop() {
        state.withLockedValue { $0.stopping = true }
        wakeup.signal()
    }

    private func schedule() async {
        await withDiscardingTaskGroup { group in
            while true {
                let now = wallClock()
                heartbeat.withLockedValue { $0 = clock.now }
                let configuration = self.configuration
                let (jobs, wake, stopping) = state.withLockedValue { state in
                    let (jobs, wake) = state.pickJobs(now: now, policy: configuration.policy, scopes: configuration.scopes)
                    return (jobs, wake, state.stopping)
                }
                if stopping { break }
                for job in jobs {
                    group.addTask {
                        await self.perform(job)
                        self.state.withLockedValue { state in
                            state.running.remove(job.account)
                            state.dirty.insert(job.account)
                        }
                        self.wakeup.signal()
                    }
                }
                let delay = min(max(wake.timeIntervalSince(now), 0.005), configuration.policy.wakeInterval)
                await wakeup.wait(seconds: delay, clock: clock)
            }
            // Let running refreshes finish and commit for a bounded time, then abandon them.
            let deadline = clock.now + .seconds(5)
            while state.withLockedValue({ !$0.running.isEmpty }), clock.now < deadline {
                await wakeup.wait(seconds: 0.1, clock: clock)
            }
            group.cancelAll()
        }
    }

    private struct Snapshot {
        var realm: Realm
        var login: String
        var refreshToken: Secret?
        var password: Secret?
        var cookies: Credential?
        var skype: Credential?
    }

    private func snapshot(_ name: AccountName, realm realmName: String) -> Snapshot? {
        guard let realm = try? configuration.realm(named: realmName) else { return nil }
        return state.withLockedValue { state in
            guard let account = state.accounts[name] else { return nil }
            return Snapshot(
                realm: realm, login: account.login, refreshToken: account.refreshToken, password: account.password,
                cookies: account.cookies, skype: account.credentials[.scope(.skype)]?.credential)
        }
    }

    private func perform(_ job: Job) async {
        switch job {
        case .persist(let name):
            persistUnsaved(name)
        case .refresh(let key, let realmName):
            let started = wallClock()
            let due = state.withLockedValue { state -> Date? in
                state.accounts[key.account]?.credentials[key.kind]?.lastAttempt = started
                return state.accounts[key.account]?.credentials[key.kind]?.dueAt
            }
            if let due { metrics.late(by: started.timeIntervalSince(due)) }
            guard let snap = snapshot(key.account, realm: realmName) else {
                fail(key, .rejected(code: "unknown_realm", description: "realm \(realmName) is not configured"))
                return
            }
            do {
                try await refresh(key, snap, now: started)
            } catch {
                fail(key, error)
            }
        }
    }

    private func refresh(_ key: CredentialKey, _ snap: Snapshot, now: Date) async throws(RefreshFailure) {
        let policy = configuration.policy
        switch key.kind {
        case .scope(let scope):
            guard let refreshToken = snap.refreshToken else { throw .grantRevoked("no refresh token is stored") }
            let grant = try await identity.refresh(realm: snap.realm, refreshToken: refreshToken, scope: scope, now: now)
            commit(key, grant: grant, previous: refreshToken, cookies: nil)
        case .skypetoken:
            // It depends on the skype.com token: refresh that first when it is not good for a while.
            var skype = snap.skype
            if skype.map({ !policy.isFresh($0.accessToken(scope: .skype), now: now, minValid: 0) }) ?? true {
                guard let refreshToken = snap.refreshToken else { throw .grantRevoked("no refresh token is stored") }
                let grant = try await identity.refresh(realm: snap.realm, refreshToken: refreshToken, scope: .skype, now: now)
                commit(CredentialKey(account: key.account, kind: .scope(.skype)), grant: grant, previous: refreshToken, cookies: nil)
                skype = Credential(grant.accessToken)
            }
            do {
                succeed(key, try await identity.skypetoken(realm: snap.realm, accessToken: skype!.value, now: now))
            } catch .rejected(let code, _) where code.hasPrefix("skypetoken_") {
                // The access token was refused: get a new one (this is where a revoked grant shows), then try once more.
                guard let refreshToken = state.withLockedValue({ $0.accounts[key.account]?.refreshToken }) else {
                    throw .grantRevoked("no refresh token is stored")
                }
                let grant = try await identity.refresh(realm: snap.realm, refreshToken: refreshToken, scope: .skype, now: now)
                commit(CredentialKey(account: key.account, kind: .scope(.skype)), grant: grant, previous: refreshToken, cookies: nil)
                succeed(key, try await identity.skypetoken(realm: snap.realm, accessToken: grant.accessToken.value, now: now))
            }
        case .cookies:
            try await refreshCookies(key, snap, now: now)
        case .uic:
            var cookies = snap.cookies
            if cookies.map({ $0.expiresAt <= now }) ?? true {
                try await refreshCookies(CredentialKey(account: key.account, kind: .cookies), snap, now: now)
                cookies = state.withLockedValue { $0.accounts[key.account]?.cookies }
            }
            guard let cookies else { throw .rejected(code: "no_cookies", description: "no session cookies") }
            do {
                succeed(key, try await identity.userInitialization(realm: snap.realm, cookies: cookies.value, now: now))
            } catch .rejected(let code, let description) where code == "cookies_refused" {
                // The cookies went bad early: renew them, then try once more.
                try await refreshCookies(CredentialKey(account: key.account, kind: .cookies), snap, now: now)
                guard let renewed = state.withLockedValue({ $0.accounts[key.account]?.cookies }) else {
                    throw .rejected(code: code, description: description)
                }
                succeed(key, try await identity.userInitialization(realm: snap.realm, cookies: renewed.value, now: now))
            }
        case .ticket:
            guard let password = snap.password else { throw .rejected(code: "no_password", description: "no stored password") }
            succeed(key, try await identity.rstTicket(realm: snap.realm, login: snap.login, password: password, now: now))
        }
    }

    /// Renews the session cookies by silent sign-in (or by password, when stored). A silent
    /// sign-in also starts a new grant family: its refresh token replaces the old one, committed
    /// with the cookies and the skype.com token in one transaction.
    private func refreshCookies(_ key: CredentialKey, _ snap: Snapshot, now: Date) async throws(RefreshFailure) {
        var result: SignInResult?
        if let cookies = snap.cookies, cookies.expiresAt > now {
            do {
                result = try await identity.silentSignIn(realm: snap.realm, cookies: cookies.value, now: now)
            } catch .rejected(let code, let description) where code == "cookies_refused" {
                if snap.password == nil { throw .rejected(code: code, description: description) }
            }
        }
        if result == nil, let password = snap.password {
            result = try await identity.passwordSignIn(realm: snap.realm, login: snap.login, password: password, now: now)
        }
        guard let result else { throw .rejected(code: "cookies_refused", description: "the session cookies expired and no password is stored") }
        guard let cookies = result.cookies else { throw .transient("the sign-in set no session cookies") }
        commit(
            CredentialKey(account: key.account, kind: .scope(result.grant.accessToken.scope)), grant: result.grant,
            previous: snap.refreshToken ?? Secret(""),
            cookies: Credential(value: cookies, obtainedAt: now, expiresAt: result.cookiesExpireAt ?? result.grant.accessToken.expiresAt))
    }

    /// Commits a refresh or sign-in: the rotated refresh token, the access token (and the cookies)
    /// go to disk in one transaction before the token is served or the old refresh token is forgotten.
    private func commit(_ key: CredentialKey, grant: TokenGrant, previous: Secret, cookies: Credential?) {
        let rotated = grant.refreshToken.flatMap { $0 == previous ? nil : $0 }
        // A rotated token still waiting in memory goes to disk with this commit.
        let pending = state.withLockedValue { $0.accounts[key.account]?.unsaved }
        var saved = true
        do {
            try store.commitRefresh(
                account: key.account, accessToken: grant.accessToken, rotatedRefreshToken: rotated ?? pending?.rotated,
                cookies: cookies?.value ?? pending?.cookies)
            storageRecovered()
        } catch {
            saved = false
            storageFailed(error, account: key.account)
        }
        let policy = configuration.policy
        let now = wallClock()
        let credential = Credential(grant.accessToken)
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard var account = state.accounts[key.account] else { return state.takeWaiters(key) }
            if let rotated { account.refreshToken = rotated }
            if saved {
                account.unsaved = nil
            } else {
                account.unsaved = (grant.accessToken, rotated ?? account.unsaved?.rotated, cookies?.value ?? account.unsaved?.cookies)
                account.retrySaveAt = now.addingTimeInterval(1)
            }
            account.credentials[key.kind] = fresh(credential, now: now, policy: policy)
            var released = state.takeWaiters(key)
            if let cookies {
                // A sign-in starts a new grant family and the provider revokes the old one: the
                // other tokens (and the skypetoken made from one) must not be served any more.
                for kind in Array(account.credentials.keys) where kind != key.kind && (kind == .skypetoken || { if case .scope = kind { return true } else { return false } }()) {
                    account.credentials[kind]?.credential = nil
                    account.credentials[kind]?.dueAt = now
                }
                account.credentials[.cookies] = fresh(cookies, now: now, policy: policy)
                account.cookiesLost = nil
                state.urgent.remove(CredentialKey(account: key.account, kind: .cookies))
                released += state.takeWaiters(CredentialKey(account: key.account, kind: .cookies))
            }
            // The skypetoken follows the token it is made from.
            if key.kind == .scope(.skype), account.credentials[.skypetoken] != nil {
                account.credentials[.skypetoken]?.dueAt = now
            }
            state.accounts[key.account] = account
            state.urgent.remove(key)
            return released
        }
        for waiter in waiters { waiter.resume() }
        metrics.refreshed("ok")
        logger.info("token refreshed", metadata: [
            "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)", "broker.scope": "\(grant.accessToken.scope.alias)",
            "broker.event": "refreshed", "broker.rotated": "\(rotated != nil)",
            "broker.expires_in": "\(Int(grant.accessToken.expiresAt.timeIntervalSince(now)))",
            "broker.next_refresh_usec": "\(nextRefreshMicroseconds(key))",
        ])
    }

    /// Keeps a credential that lives in memory only (skypetoken, UIC, RST ticket).
    private func succeed(_ key: CredentialKey, _ credential: Credential) {
        let policy = configuration.policy
        let now = wallClock()
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard state.accounts[key.account] != nil else { return state.takeWaiters(key) }
            state.accounts[key.account]?.credentials[key.kind] = fresh(credential, now: now, policy: policy)
            state.urgent.remove(key)
            return state.takeWaiters(key)
        }
        for waiter in waiters { waiter.resume() }
        metrics.refreshed("ok")
        logger.info("credential refreshed", metadata: [
            "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)", "broker.event": "refreshed",
            "broker.expires_in": "\(Int(credential.expiresAt.timeIntervalSince(now)))",
            "broker.next_refresh_usec": "\(nextRefreshMicroseconds(key))",
        ])
    }

    /// When the credential is next due, in microseconds since the epoch (the journal's NEXT_REFRESH_USEC).
    private func nextRefreshMicroseconds(_ key: CredentialKey) -> String {
        guard let due = state.withLockedValue({ $0.accounts[key.account]?.credentials[key.kind]?.dueAt }) else { return "" }
        return String(Int64(due.timeIntervalSince1970 * 1_000_000))
    }

    private func fail(_ key: CredentialKey, _ failure: RefreshFailure) {
        let policy = configuration.policy
        let now = wallClock()
        let error = failure.brokerError
        let (waiters, revoked, lostCookies) = state.withLockedValue { state -> ([CheckedContinuation<Void, Never>], Bool, Bool) in
            guard var account = state.accounts[key.account], var runtime = account.credentials[key.kind] else {
                return (state.takeWaiters(key), false, false)
            }
            runtime.failures += 1
            runtime.lastError = error
            var revoked = false
            var lostCookies = false
            switch failure {
            case .grantRevoked:
                account.state = .needsReauth
                account.stateReason = failure.message
                revoked = true
            case .rateLimited(let retryAfter):
                let rest = policy.rateLimitRest(retryAfter: retryAfter, now: now)
                state.restUntil[account.realm] = max(state.restUntil[account.realm] ?? rest, rest)
                runtime.backoffUntil = rest
                runtime.dueAt = max(runtime.dueAt, rest)
            case .rejected(let code, let description) where code == "cookies_refused" && (key.kind == .cookies || key.kind == .uic):
                account.cookiesLost = description
                lostCookies = true
                runtime.dueAt = now.addingTimeInterval(policy.backoffCap)
            case .transient, .rejected:
                let retry = policy.retryAfterFailure(
                    failures: runtime.failures, now: now, expiresAt: runtime.credential?.expiresAt, random: .random(in: 0..<1))
                runtime.backoffUntil = retry
                runtime.dueAt = retry
            }
            account.credentials[key.kind] = runtime
            state.accounts[key.account] = account
            var waiters = state.takeWaiters(key)
            if lostCookies {
                for kind in [CredentialKind.cookies, .uic] {
                    waiters += state.takeWaiters(CredentialKey(account: key.account, kind: kind))
                    state.urgent.remove(CredentialKey(account: key.account, kind: kind))
                }
            }
            if revoked || waiters.isEmpty { state.urgent.remove(key) }
            return (waiters, revoked, lostCookies)
        }
        switch failure {
        case .grantRevoked: metrics.refreshed("needs_reauth")
        case .rateLimited: metrics.refreshed("rate_limited")
        default: metrics.refreshed("failed")
        }
        if revoked {
            do { try store.setState(.needsReauth, reason: failure.message, for: key.account) } catch {
                logger.error("could not save account state", metadata: ["broker.account": "\(key.account)"])
            }
            logger.warning("account needs a new sign-in", metadata: [
                "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)", "broker.event": "needs_reauth",
                "broker.reason": "\(failure.message)",
            ])
        } else {
            logger.notice(lostCookies ? "session cookies lost" : "refresh failed", metadata: [
                "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)", "broker.event": "refresh_failed",
                "error.type": "\(error.code.rawValue)", "broker.reason": "\(failure.message)",
            ])
        }
        for waiter in waiters { waiter.resume() }
    }

    private func persistUnsaved(_ name: AccountName) {
        guard let unsaved = state.withLockedValue({ $0.accounts[name]?.unsaved }) else { return }
        do {
            try store.commitRefresh(account: name, accessToken: unsaved.token, rotatedRefreshToken: unsaved.rotated, cookies: unsaved.cookies)
            state.withLockedValue { $0.accounts[name]?.unsaved = nil }
            storageRecovered()
            logger.notice("saved a refreshed token that had waited in memory", metadata: ["broker.account": "\(name)"])
        } catch {
            // Keep it in memory, keep serving, and try again in a second.
            let retry = wallClock().addingTimeInterval(1)
            state.withLockedValue { $0.accounts[name]?.retrySaveAt = retry }
            storageFailed(error, account: name)
        }
    }

    private func storageFailed(_ error: any Error, account: AccountName) {
        let message = Self.brokerError(error).message
        let first = storageFailure.withLockedValue { failure -> Bool in
            defer { failure = message }
            return failure == nil
        }
        if first {
            logger.error("storage failing: keeping refreshed tokens in memory, serving, and retrying the writes", metadata: [
                "broker.account": "\(account)", "broker.event": "storage_degraded", "error.message": "\(message)",
            ])
        }
    }

    private func storageRecovered() {
        let was = storageFailure.withLockedValue { failure -> String? in
            defer { failure = nil }
            return failure
        }
        if was != nil {
            logger.notice("storage recovered: every refreshed token is on disk again", metadata: ["broker.event": "storage_recovered"])
        }
    }

    // MARK: - Reads

    /// The cache lookup: a memory read, no I/O. Safe to call from an event loop.
    public func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead {
        let now = wallClock()
        let configuration = self.configuration
        return state.withLockedValue { state in
            guard let entry = state.accounts[account] else { return .notFound }
            if entry.state == .needsReauth { return .needsReauth(entry.stateReason ?? "sign-in required") }
            if let error = entry.unavailable(kind, scopes: configuration.scopes) { return .unavailable(error) }
            if let runtime = entry.credentials[kind], let credential = runtime.credential,
                credential.expiresAt.timeIntervalSince(now) >= max(configuration.policy.safetyMargin, minValid)
            {
                return .fresh(ServedCredential(kind: kind, credential: credential, expiresAtText: runtime.expiresAtText))
            }
            return .stale
        }
    }

    public func cachedRead(account: AccountName, scope: Scope, minValid: TimeInterval) -> CachedRead {
        cachedRead(account: account, kind: .scope(scope), minValid: minValid)
    }

    public func token(account: AccountName, scope: Scope, minValid: TimeInterval = 0) async throws(BrokerError) -> ServedCredential {
        try await read(account: account, kind: .scope(scope), minValid: minValid)
    }

    /// A read that may wait: refreshes a missing or nearly expired credential at once (concurrent
    /// reads share that refresh), waits up to `read_wait`, and then serves the still-valid
    /// credential or fails. An expired credential is never served.
    public func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval = 0) async throws(BrokerError) -> ServedCredential {
        let policy = configuration.policy
        let deadline = clock.now + .milliseconds(Int64(policy.readWait * 1000))
        let started = wallClock()
        let key = CredentialKey(account: account, kind: kind)
        while true {
            switch cachedRead(account: account, kind: kind, minValid: minValid) {
            case .fresh(let served): return served
            case .notFound: throw BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")
            case .needsReauth(let reason):
                throw BrokerError(.needsReauth, "account \(account) needs a new sign-in: \(reason)", hint: "tokenctl login")
            case .unavailable(let error): throw error
            case .stale: break
            }
            let remaining = deadline - clock.now
            if remaining <= .zero { break }
            await waitForAttempt(key, timeout: remaining)
            let (servable, failed, refreshedNow) = inspect(key, minValid: minValid, since: started)
            // After a failed attempt, a credential that is still valid is served with its true expiry.
            if let servable, failed { return servable }
            // Refreshed during this read and still short: the provider's lifetime is too short.
            if let refreshedNow, refreshedNow.credential.expiresAt.timeIntervalSince(wallClock()) < max(minValid, policy.safetyMargin) {
                throw BrokerError(.temporarilyUnavailable,
                    "the provider issues \(kind.name) credentials valid for \(Int(refreshedNow.credential.expiresAt.timeIntervalSince(refreshedNow.credential.obtainedAt))) s, less than the \(Int(max(minValid, policy.safetyMargin))) s asked for")
            }
        }
        if let servable = inspect(key, minValid: minValid, since: started).servable { return servable }
        let lastError = state.withLockedValue { $0.accounts[account]?.credentials[kind]?.lastError }
        throw BrokerError(.temporarilyUnavailable,
            "no valid \(kind.name) for \(account) yet" + (lastError.map { ": \($0.message)" } ?? ""))
    }

    /// The credential if it may still be served, whether the last attempt failed, and the
    /// credential if it was refreshed since `start`.
    private func inspect(_ key: CredentialKey, minValid: TimeInterval, since start: Date)
        -> (servable: ServedCredential?, failed: Bool, refreshed: ServedCredential?)
    {
        let now = wallClock()
        return state.withLockedValue { state in
            guard let runtime = state.accounts[key.account]?.credentials[key.kind], let credential = runtime.credential else {
                return (nil, false, nil)
            }
            let served = ServedCredential(kind: key.kind, credential: credential, expiresAtText: runtime.expiresAtText)
            let left = credential.expiresAt.timeIntervalSince(now)
            let servable = left > 0 && left >= minValid ? served : nil
            let refreshed = runtime.failures == 0 && credential.obtainedAt >= start ? served : nil
            return (servable, runtime.failures > 0, refreshed)
        }
    }

    /// Marks the credential urgent, wakes the scheduler, and waits for its next attempt to finish.
    private func waitForAttempt(_ key: CredentialKey, timeout: Duration) async {
        let id = state.withLockedValue { state -> UInt64 in
            state.urgent.insert(key)
            state.dirty.insert(key.account)
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        wakeup.signal()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await self.clock.sleep(for: timeout) }
            group.addTask {
                await withTaskCancellationHandler {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        let cancelled = self.state.withLockedValue { state -> Bool in
                            if Task.isCancelled { return true }
                            state.waiters[key, default: [:]][id] = continuation
                            return false
                        }
                        if cancelled { continuation.resume() }
                    }
                } onCancel: {
                    self.state.withLockedValue { $0.waiters[key]?.removeValue(forKey: id) }?.resume()
                }
            }
            await group.next()
            group.cancelAll()
        }
    }

    /// The ssl-compact-ticket: `t=...` from the ssl.live.com token, or `t=...&p=` from RST.srf,
    /// whichever the account chose.
    public func ticket(account: AccountName, minValid: TimeInterval = 0) async throws(BrokerError) -> (ticket: String, method: TicketMethod, served: ServedCredential) {
        let method = state.withLockedValue { $0.accounts[account]?.ticketMethod } ?? .oauth
        switch method {
        case .oauth:
            let served = try await read(account: account, kind: .scope(.ssl), minValid: minValid)
            return ("t=" + served.credential.value.exposed, .oauth, served)
        case .rst:
            let served = try await read(account: account, kind: .ticket, minValid: minValid)
            return (served.credential.value.exposed, .rst, served)
        }
    }

    // MARK: - Accounts

    public func accountNames() -> [AccountName] { state.withLockedValue { Array($0.accounts.keys) }.sorted() }

    public func status(_ name: AccountName) -> AccountReport? {
        let scopes = configuration.scopes
        return state.withLockedValue { state in
            guard let account = state.accounts[name] else { return nil }
            let rest = state.restUntil[account.realm]
            return AccountReport(
                name: name, realm: account.realm, login: account.login, state: account.state, stateReason: account.stateReason,
                ticketMethod: account.ticketMethod,
                credentials: account.kinds(scopes: scopes).sorted().compactMap { kind in
                    guard let runtime = account.credentials[kind] else { return nil }
                    var backoff = runtime.backoffUntil
                    if let rest, rest > (backoff ?? .distantPast) { backoff = rest }
                    return CredentialReport(
                        kind: kind, expiresAt: runtime.credential?.expiresAt, lastRefresh: runtime.lastRefresh,
                        nextRefresh: account.state == .active ? runtime.dueAt : nil, backoffUntil: backoff,
                        failures: runtime.failures, lastError: runtime.lastError)
                })
        }
    }

    /// Counts a read on the socket: `fresh`, `refreshed`, `denied` or `error`, with its duration.
    public func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64? = nil) { metrics.read(outcome, nanoseconds: nanoseconds) }

    /// Brings the gauges up to date, just before they are scraped.
    public func updateGauges() {
        let (accounts, needsReauth) = counts()
        metrics.accounts(active: accounts - needsReauth, needsReauth: needsReauth)
    }

    public func counts() -> (accounts: Int, needsReauth: Int) {
        state.withLockedValue { state in (state.accounts.count, state.accounts.values.filter { $0.state == .needsReauth }.count) }
    }

    /// The earliest scheduled refresh, for status lines.
    public func nextRefresh() -> Date? {
        state.withLockedValue { state in
            state.accounts.values.filter { $0.state == .active }.flatMap { $0.credentials.values.map(\.dueAt) }.min()
        }
    }

    /// Signs in (or redeems a redirect, or imports a refresh token), stores the grant, and
    /// schedules every credential. Signing in again to an existing account replaces its grant.
    public func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        let configuration = self.configuration
        let realm = try configuration.realm(named: command.realm)
        let login = command.login.trimmingCharacters(in: .whitespaces)
        guard !login.isEmpty, login.count <= 320 else { throw BrokerError(.badRequest, "a login is required") }
        guard let name = command.name ?? AccountName(rawValue: login) else {
            throw BrokerError(.badRequest, "the login is not a valid account name; choose one with name")
        }
        if let existing = state.withLockedValue({ $0.accounts[name] }),
            existing.login.lowercased() != login.lowercased() || existing.realm != realm.name
        {
            throw BrokerError(.conflict, "account \(name) is already enrolled for another login or realm")
        }
        let now = wallClock()
        var tokens: [AccessToken] = []
        var refreshToken: Secret
        var cookies = command.cookies.map { (value: $0, expiresAt: Date?.none) }
        var password: Secret?
        switch command.credential {
        case .password(let secret, let storePassword):
            let result = try await identity.signIn(realm: realm, login: login, password: secret, now: now)
            tokens = [result.grant.accessToken]
            guard let rt = result.grant.refreshToken else { throw BrokerError(.signInFailed, "sign-in returned no refresh token") }
            refreshToken = rt
            if let value = result.cookies { cookies = (value, result.cookiesExpireAt) }
            if storePassword { password = secret }
        case .redirectURL(let url):
            let result = try LiveIdentityClient.redeem(url, now: now)
            tokens = [result.grant.accessToken]
            refreshToken = result.grant.refreshToken!
        case .refreshToken(let imported):
            // One refresh proves the token works, and takes the rotated one if the server rotates.
            do {
                let grant = try await identity.refresh(realm: realm, refreshToken: imported, scope: configuration.scopes.first ?? .skype, now: now)
                tokens = [grant.accessToken]
                refreshToken = grant.refreshToken ?? imported
            } catch {
                throw error.brokerError.code == .needsReauth
                    ? BrokerError(.invalidCredentials, "the refresh token was refused: \(error.message)")
                    : error.brokerError
            }
        }
        if command.ticketMethod == .rst && password == nil && state.withLockedValue({ $0.accounts[name]?.password }) == nil {
            throw BrokerError(.badRequest, "the rst ticket method needs the password stored: enroll with a password and store_password")
        }
        let exists = state.withLockedValue { $0.accounts[name] != nil }
        do {
            if exists {
                try store.replaceGrant(account: name, refreshToken: refreshToken, accessTokens: tokens, cookies: cookies?.value)
                if let password { try store.setSecret(password, kind: .password, account: name) }
                try store.setTicketMethod(command.ticketMethod.rawValue, for: name)
            } else {
                try store.createAccount(
                    name: name, realm: realm.name, login: login, refreshToken: refreshToken, accessTokens: tokens,
                    password: password, cookies: cookies?.value, ticketMethod: command.ticketMethod.rawValue)
            }
        } catch {
            throw Self.brokerError(error)
        }
        let storedPassword = password ?? state.withLockedValue { $0.accounts[name]?.password }
        let runtime = makeRuntime(
            realm: realm.name, login: login, state: .active, reason: nil, refreshToken: refreshToken, tokens: tokens,
            password: storedPassword, cookies: cookies, ticketMethod: command.ticketMethod, now: now, configuration: configuration)
        state.withLockedValue { state in
            state.accounts[name] = runtime
            state.dirty.insert(name)
        }
        wakeup.signal()
        logger.info("account enrolled", metadata: ["broker.account": "\(name)", "broker.realm": "\(realm.name)", "broker.event": "enrolled"])
        return status(name)!
    }

    /// Re-seals every stored secret under a new key while serving goes on.
    public func rekey(keyBytes: [UInt8]) throws(BrokerError) -> CredentialStore.RekeyResult {
        do {
            let result = try store.rekey(to: keyBytes)
            logger.notice("store re-sealed under a new key", metadata: ["broker.event": "rekeyed", "broker.key_id": "\(result.keyID)"])
            return result
        } catch {
            throw Self.brokerError(error)
        }
    }

    /// Forgets every secret of the account.
    public func logout(_ name: AccountName) throws(BrokerError) {
        let removed: Bool
        do { removed = try store.deleteAccount(name) } catch { throw Self.brokerError(error) }
        let known = state.withLockedValue { $0.accounts.removeValue(forKey: name) != nil }
        guard removed || known else { throw BrokerError(.notFound, "no account named \(name)") }
        logger.info("account removed", metadata: ["broker.account": "\(name)", "broker.event": "logout"])
    }

    // MARK: - Helpers

    static func brokerError(_ error: any Error) -> BrokerError {
        error as? BrokerError ?? BrokerError(.internalError, "storage error: \(type(of: error))")
    }

    static func rfc3339(_ date: Date) -> String {
        var time = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&time, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
