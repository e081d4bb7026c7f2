import BrokerCore
import BrokerStore
import Foundation
import LiveClient
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The engine's configuration; a reload replaces it whole.
public struct EngineConfiguration: Sendable {
    public var realms: [Realm]
    /// The scopes kept fresh for every account.
    public var scopes: [Scope]
    public var policy: RefreshPolicy

    public init(realms: [Realm], scopes: [Scope] = Scope.allCases, policy: RefreshPolicy = RefreshPolicy()) {
        self.realms = realms
        self.scopes = scopes
        self.policy = policy
    }

    public var defaultRealm: Realm? { realms.count == 1 ? realms[0] : nil }

    public func realm(named name: String?) throws(BrokerError) -> Realm {
        if let name {
            guard let realm = realms.first(where: { $0.name == name }) else {
                throw BrokerError(.badRequest, "no realm named \(name) is configured")
            }
            return realm
        }
        guard let realm = defaultRealm else {
            throw BrokerError(.badRequest, "several realms are configured; name one with realm")
        }
        return realm
    }
}

/// A token as the server hands it out.
public struct ServedToken: Sendable {
    public var token: AccessToken
    /// RFC 3339, formatted once when the token was obtained.
    public var expiresAtText: String
}

/// What a cache lookup found.
public enum CachedRead: Sendable {
    case fresh(ServedToken)
    /// Missing or inside the safety margin: a refresh is needed first.
    case stale
    case notFound
    case needsReauth(String)
}

/// How an account is enrolled.
public enum EnrollCredential: Sendable {
    case password(Secret, store: Bool)
    case redirectURL(String)
    case refreshToken(Secret)
}

public struct EnrollCommand: Sendable {
    public var login: String
    public var name: AccountName?
    public var realm: String?
    public var credential: EnrollCredential
    public var cookies: Secret?

    public init(login: String, name: AccountName?, realm: String?, credential: EnrollCredential, cookies: Secret?) {
        self.login = login
        self.name = name
        self.realm = realm
        self.credential = credential
        self.cookies = cookies
    }
}

/// Status of one scope, for the API and tokenctl.
public struct ScopeReport: Sendable {
    public var scope: Scope
    public var expiresAt: Date?
    public var lastRefresh: Date?
    public var nextRefresh: Date?
    public var backoffUntil: Date?
    public var failures: Int
    public var lastError: BrokerError?
}

public struct AccountReport: Sendable {
    public var name: AccountName
    public var realm: String
    public var login: String
    public var state: AccountState
    public var stateReason: String?
    public var scopes: [ScopeReport]
}

/// The refresh service: keeps every scope of every account fresh, serializes refreshes of one
/// account (its scopes share one rotating refresh token), runs accounts concurrently up to a cap,
/// backs off on failures, rests a realm on 429, and lets concurrent reads share one refresh.
///
/// Deadlines are wall-clock times from the server's `expires_in`; the scheduler sleeps on an
/// injected monotonic clock for at most `wakeInterval`, so a suspend or a clock jump is noticed.
public final class BrokerEngine: Service, Sendable {
    private let store: CredentialStore
    private let identity: any IdentityService
    private let clock: MonotonicClock
    private let wallClock: @Sendable () -> Date
    private let logger: Logger
    private let state = NIOLockedValueBox(EngineState())
    private let configurationBox: NIOLockedValueBox<EngineConfiguration>
    private let wakeup = Wakeup()

    public init(
        configuration: EngineConfiguration, store: CredentialStore, identity: any IdentityService,
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

    /// Replaces realms, scopes and policy; stored tokens and connections are untouched.
    public func reconfigure(_ configuration: EngineConfiguration) {
        configurationBox.withLockedValue { $0 = configuration }
        let now = wallClock()
        state.withLockedValue { state in
            for name in Array(state.accounts.keys) {
                for scope in configuration.scopes where state.accounts[name]?.scopes[scope] == nil {
                    state.accounts[name]?.scopes[scope] = ScopeRuntime(dueAt: now)
                }
            }
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
                    hasPassword: account.hasPassword, hasCookies: account.hasCookies, now: now, configuration: configuration)
            }
        }
        logger.info("accounts loaded", metadata: ["broker.accounts": "\(loaded.count)"])
    }

    private func makeRuntime(
        realm: String, login: String, state: AccountState, reason: String?, refreshToken: Secret?, tokens: [AccessToken],
        hasPassword: Bool, hasCookies: Bool, now: Date, configuration: EngineConfiguration
    ) -> AccountRuntime {
        var scopes: [Scope: ScopeRuntime] = [:]
        for scope in configuration.scopes { scopes[scope] = ScopeRuntime(dueAt: now) }
        for token in tokens where token.expiresAt > now {
            scopes[token.scope] = ScopeRuntime(
                token: token, expiresAtText: Self.rfc3339(token.expiresAt),
                dueAt: configuration.policy.nextRefresh(obtainedAt: token.obtainedAt, expiresAt: token.expiresAt, random: .random(in: 0..<1)),
                lastRefresh: token.obtainedAt)
        }
        return AccountRuntime(
            realm: realm, login: login, state: state, stateReason: reason, refreshToken: refreshToken, scopes: scopes,
            hasPassword: hasPassword, hasCookies: hasCookies)
    }

    // MARK: - Service

    public func run() async throws {
        try await withGracefulShutdownHandler {
            await self.schedule()
        } onGracefulShutdown: {
            self.state.withLockedValue { $0.stopping = true }
            self.wakeup.signal()
        }
    }

    /// Stops scheduling: used by tests that run the engine without a service group.
    public func stop() {
        state.withLockedValue { $0.stopping = true }
        wakeup.signal()
    }

    private func schedule() async {
        await withDiscardingTaskGroup { group in
            while true {
                let now = wallClock()
                let configuration = self.configuration
                let (jobs, wake, stopping) = state.withLockedValue { state in
                    let (jobs, wake) = state.pickJobs(now: now, policy: configuration.policy, scopes: configuration.scopes)
                    return (jobs, wake, state.stopping)
                }
                if stopping { break }
                for job in jobs {
                    group.addTask {
                        await self.perform(job)
                        self.state.withLockedValue { _ = $0.running.remove(job.account) }
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

    private func perform(_ job: Job) async {
        switch job {
        case .persist(let name):
            persistUnsaved(name)
        case .refresh(let key, let realmName, let refreshToken):
            guard let realm = try? configuration.realm(named: realmName) else {
                fail(key, .rejected(code: "unknown_realm", description: "realm \(realmName) is no longer configured"))
                return
            }
            let started = wallClock()
            state.withLockedValue { $0.accounts[key.account]?.scopes[key.scope]?.lastAttempt = started }
            do {
                let grant = try await identity.refresh(realm: realm, refreshToken: refreshToken, scope: key.scope, now: started)
                succeed(key, grant: grant, previous: refreshToken)
            } catch {
                fail(key, error)
            }
        }
    }

    /// Commits a refresh: the rotated refresh token and the access token go to disk in one
    /// transaction before the token is served or the old refresh token is forgotten.
    private func succeed(_ key: ScopeKey, grant: TokenGrant, previous: Secret) {
        let rotated = grant.refreshToken.flatMap { $0 == previous ? nil : $0 }
        var saved = true
        do {
            try store.commitRefresh(account: key.account, accessToken: grant.accessToken, rotatedRefreshToken: rotated)
        } catch {
            saved = false
            logger.error("could not save a refreshed token; keeping it in memory and retrying", metadata: [
                "broker.account": "\(key.account)", "broker.scope": "\(key.scope.alias)", "error.type": "\(Self.brokerError(error).code.rawValue)",
            ])
        }
        let policy = configuration.policy
        let now = wallClock()
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            guard var account = state.accounts[key.account] else { return state.takeWaiters(key) }
            if let rotated { account.refreshToken = rotated }
            if !saved { account.unsaved = (grant.accessToken, rotated ?? account.unsaved?.rotated) }
            var runtime = account.scopes[key.scope] ?? ScopeRuntime(dueAt: now)
            runtime.token = grant.accessToken
            runtime.expiresAtText = Self.rfc3339(grant.accessToken.expiresAt)
            runtime.lastRefresh = grant.accessToken.obtainedAt
            runtime.dueAt = policy.nextRefresh(
                obtainedAt: grant.accessToken.obtainedAt, expiresAt: grant.accessToken.expiresAt, random: .random(in: 0..<1))
            runtime.failures = 0
            runtime.lastError = nil
            runtime.backoffUntil = nil
            account.scopes[key.scope] = runtime
            state.accounts[key.account] = account
            state.urgent.remove(key)
            return state.takeWaiters(key)
        }
        for waiter in waiters { waiter.resume() }
        logger.info("token refreshed", metadata: [
            "broker.account": "\(key.account)", "broker.scope": "\(key.scope.alias)", "broker.event": "refreshed",
            "broker.rotated": "\(rotated != nil)", "broker.expires_in": "\(Int(grant.accessToken.expiresAt.timeIntervalSince(now)))",
        ])
    }

    private func fail(_ key: ScopeKey, _ failure: RefreshFailure) {
        let policy = configuration.policy
        let now = wallClock()
        let error = failure.brokerError
        let (waiters, revoked) = state.withLockedValue { state -> ([CheckedContinuation<Void, Never>], Bool) in
            guard var account = state.accounts[key.account], var runtime = account.scopes[key.scope] else {
                return (state.takeWaiters(key), false)
            }
            runtime.failures += 1
            runtime.lastError = error
            var revoked = false
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
            case .transient, .rejected:
                let retry = policy.retryAfterFailure(failures: runtime.failures, now: now, expiresAt: runtime.token?.expiresAt, random: .random(in: 0..<1))
                runtime.backoffUntil = retry
                runtime.dueAt = retry
            }
            account.scopes[key.scope] = runtime
            state.accounts[key.account] = account
            let waiters = state.takeWaiters(key)
            if revoked || waiters.isEmpty { state.urgent.remove(key) }
            return (waiters, revoked)
        }
        if revoked {
            do { try store.setState(.needsReauth, reason: failure.message, for: key.account) } catch {
                logger.error("could not save account state", metadata: ["broker.account": "\(key.account)"])
            }
            logger.warning("account needs a new sign-in", metadata: [
                "broker.account": "\(key.account)", "broker.scope": "\(key.scope.alias)", "broker.event": "needs_reauth",
                "broker.reason": "\(failure.message)",
            ])
        } else {
            logger.notice("refresh failed", metadata: [
                "broker.account": "\(key.account)", "broker.scope": "\(key.scope.alias)", "broker.event": "refresh_failed",
                "error.type": "\(error.code.rawValue)", "broker.reason": "\(failure.message)",
            ])
        }
        for waiter in waiters { waiter.resume() }
    }

    private func persistUnsaved(_ name: AccountName) {
        guard let unsaved = state.withLockedValue({ $0.accounts[name]?.unsaved }) else { return }
        do {
            try store.commitRefresh(account: name, accessToken: unsaved.token, rotatedRefreshToken: unsaved.rotated)
            state.withLockedValue { $0.accounts[name]?.unsaved = nil }
            logger.notice("saved a refreshed token that had waited in memory", metadata: ["broker.account": "\(name)"])
        } catch {
            // Try again on the next pass, after the wake interval at most.
        }
    }

    // MARK: - Reads

    /// The cache lookup: a memory read, no I/O. Safe to call from an event loop.
    public func cachedRead(account: AccountName, scope: Scope, minValid: TimeInterval) -> CachedRead {
        let now = wallClock()
        let policy = configuration.policy
        return state.withLockedValue { state in
            guard let entry = state.accounts[account] else { return .notFound }
            if entry.state == .needsReauth { return .needsReauth(entry.stateReason ?? "sign-in required") }
            if let runtime = entry.scopes[scope], let token = runtime.token, policy.isFresh(token, now: now, minValid: minValid) {
                return .fresh(ServedToken(token: token, expiresAtText: runtime.expiresAtText))
            }
            return .stale
        }
    }

    /// A read that may wait: refreshes a missing or nearly expired token at once (concurrent
    /// reads share that refresh), waits up to `read_wait`, and then serves the still-valid token
    /// or fails. An expired token is never served.
    public func token(account: AccountName, scope: Scope, minValid: TimeInterval = 0) async throws(BrokerError) -> ServedToken {
        let policy = configuration.policy
        guard configuration.scopes.contains(scope) else {
            throw BrokerError(.unknownScope, "scope \(scope.alias) is not kept fresh by this daemon")
        }
        let deadline = clock.now + .milliseconds(Int64(policy.readWait * 1000))
        let started = wallClock()
        while true {
            switch cachedRead(account: account, scope: scope, minValid: minValid) {
            case .fresh(let served): return served
            case .notFound: throw BrokerError(.notFound, "no account named \(account)", hint: "tokenctl accounts lists them")
            case .needsReauth(let reason):
                throw BrokerError(.needsReauth, "account \(account) needs a new sign-in: \(reason)", hint: "tokenctl login")
            case .stale: break
            }
            let remaining = deadline - clock.now
            if remaining <= .zero { break }
            await waitForAttempt(ScopeKey(account: account, scope: scope), timeout: remaining)
            // After a failed attempt, a token that is still valid is served with its true expires_in.
            if let served = servable(account: account, scope: scope, minValid: minValid), lastAttemptFailed(account: account, scope: scope) {
                return served
            }
            // A token refreshed during this read that still falls short: the provider's lifetime is too short.
            if let fresh = refreshedSince(started, account: account, scope: scope), !policy.isFresh(fresh, now: wallClock(), minValid: minValid) {
                throw BrokerError(.temporarilyUnavailable,
                    "the provider issues \(scope.alias) tokens valid for \(Int(fresh.lifetime)) s, less than the \(Int(max(minValid, policy.safetyMargin))) s asked for")
            }
        }
        if let served = servable(account: account, scope: scope, minValid: minValid) { return served }
        let lastError = state.withLockedValue { $0.accounts[account]?.scopes[scope]?.lastError }
        throw BrokerError(.temporarilyUnavailable,
            "no valid \(scope.alias) token for \(account) yet" + (lastError.map { ": \($0.message)" } ?? ""))
    }

    private func servable(account: AccountName, scope: Scope, minValid: TimeInterval) -> ServedToken? {
        let now = wallClock()
        let policy = configuration.policy
        return state.withLockedValue { state in
            guard let runtime = state.accounts[account]?.scopes[scope], let token = runtime.token,
                policy.isServable(token, now: now, minValid: minValid)
            else { return nil }
            return ServedToken(token: token, expiresAtText: runtime.expiresAtText)
        }
    }

    private func refreshedSince(_ start: Date, account: AccountName, scope: Scope) -> AccessToken? {
        state.withLockedValue { state in
            guard let runtime = state.accounts[account]?.scopes[scope], runtime.failures == 0, let token = runtime.token,
                token.obtainedAt >= start
            else { return nil }
            return token
        }
    }

    private func lastAttemptFailed(account: AccountName, scope: Scope) -> Bool {
        state.withLockedValue { ($0.accounts[account]?.scopes[scope]?.failures ?? 0) > 0 }
    }

    /// Marks the scope urgent, wakes the scheduler, and waits for its next attempt to finish.
    private func waitForAttempt(_ key: ScopeKey, timeout: Duration) async {
        let id = state.withLockedValue { state -> UInt64 in
            state.urgent.insert(key)
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

    // MARK: - Accounts

    public func accountNames() -> [AccountName] { state.withLockedValue { Array($0.accounts.keys) }.sorted() }

    public func status(_ name: AccountName) -> AccountReport? {
        let scopes = configuration.scopes
        return state.withLockedValue { state in
            guard let account = state.accounts[name] else { return nil }
            let rest = state.restUntil[account.realm]
            return AccountReport(
                name: name, realm: account.realm, login: account.login, state: account.state, stateReason: account.stateReason,
                scopes: scopes.compactMap { scope in
                    guard let runtime = account.scopes[scope] else { return nil }
                    var backoff = runtime.backoffUntil
                    if let rest, rest > (backoff ?? .distantPast) { backoff = rest }
                    return ScopeReport(
                        scope: scope, expiresAt: runtime.token?.expiresAt, lastRefresh: runtime.lastRefresh,
                        nextRefresh: account.state == .active ? runtime.dueAt : nil, backoffUntil: backoff,
                        failures: runtime.failures, lastError: runtime.lastError)
                })
        }
    }

    public func counts() -> (accounts: Int, needsReauth: Int) {
        state.withLockedValue { state in (state.accounts.count, state.accounts.values.filter { $0.state == .needsReauth }.count) }
    }

    /// Signs in (or redeems a redirect, or imports a refresh token), stores the grant, and
    /// schedules every scope. Signing in again to an existing account replaces its grant.
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
        var cookies = command.cookies
        var password: Secret?
        switch command.credential {
        case .password(let secret, let storePassword):
            let result = try await identity.signIn(realm: realm, login: login, password: secret, now: now)
            tokens = [result.grant.accessToken]
            guard let rt = result.grant.refreshToken else { throw BrokerError(.signInFailed, "sign-in returned no refresh token") }
            refreshToken = rt
            cookies = result.cookies ?? cookies
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
        let exists = state.withLockedValue { $0.accounts[name] != nil }
        do {
            if exists {
                try store.replaceGrant(account: name, refreshToken: refreshToken, accessTokens: tokens, cookies: cookies)
                if let password { try store.setSecret(password, kind: .password, account: name) }
            } else {
                try store.createAccount(
                    name: name, realm: realm.name, login: login, refreshToken: refreshToken, accessTokens: tokens,
                    password: password, cookies: cookies)
            }
        } catch {
            throw Self.brokerError(error)
        }
        let hasPassword = password != nil || (state.withLockedValue { $0.accounts[name]?.hasPassword } ?? false)
        let runtime = makeRuntime(
            realm: realm.name, login: login, state: .active, reason: nil, refreshToken: refreshToken, tokens: tokens,
            hasPassword: hasPassword, hasCookies: cookies != nil, now: now, configuration: configuration)
        state.withLockedValue { $0.accounts[name] = runtime }
        wakeup.signal()
        logger.info("account enrolled", metadata: ["broker.account": "\(name)", "broker.realm": "\(realm.name)", "broker.event": "enrolled"])
        return status(name)!
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
