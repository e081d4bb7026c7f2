import BrokerCore
import BrokerEngine
import BrokerStore
import Foundation
import Locks
import Logging
import Synchronization
import Testing

/// An identity provider in memory: every refresh hands out a new token.
final class FakeIdentity: IdentityProviding {
    let lifetime: TimeInterval
    let refreshes = Atomic<Int>(0)

    init(lifetime: TimeInterval) { self.lifetime = lifetime }

    func refresh(realm: Realm, refreshToken: Secret, scope: Scope, now: Date) async throws(RefreshFailure) -> TokenGrant
    {
        let n = refreshes.add(1, ordering: .relaxed).newValue
        let token = AccessToken(
            value: Secret("token-\(n)"), scope: scope, obtainedAt: now, expiresAt: now.addingTimeInterval(lifetime))
        return TokenGrant(accessToken: token, refreshToken: refreshToken, userID: nil)
    }

    func signIn(realm: Realm, login: String, password: Secret, now: Date) async throws(BrokerError) -> SignInGrant {
        throw BrokerError(.signInFailed, "not in this test")
    }

    func redeem(_ redirectURL: String, now: Date) throws(BrokerError) -> TokenGrant {
        throw BrokerError(.signInFailed, "not in this test")
    }

    func skypetoken(realm: Realm, accessToken: Secret, now: Date) async throws(RefreshFailure) -> Credential {
        throw .transient("no")
    }
    func userInitialization(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> Credential {
        throw .transient("no")
    }
    func silentSignIn(realm: Realm, cookies: Secret, now: Date) async throws(RefreshFailure) -> SignInGrant {
        throw .transient("no")
    }
    func passwordSignIn(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure)
        -> SignInGrant
    {
        throw .transient("no")
    }
    func rstTicket(realm: Realm, login: String, password: Secret, now: Date) async throws(RefreshFailure) -> Credential
    { throw .transient("no") }
    func rstSites(realm: Realm, login: String, password: Secret, sites: [RSTSite], now: Date)
        async throws(RefreshFailure) -> [String: Credential]
    { throw .transient("no") }
    func passport14(realm: Realm, login: String, password: Secret, challenge: String, now: Date)
        async throws(RefreshFailure) -> String
    { throw .transient("no") }
    func skylogin(realm: Realm, request: SkyLoginSignIn, clientKey: Secret?, now: Date)
        async throws(RefreshFailure) -> Credential
    { throw .transient("no") }
}

/// A store in memory that takes every write.
final class FakeStore: CredentialPersisting {
    let writes = Atomic<Int>(0)

    func loadAccounts() throws -> [AccountSeed] { [] }
    func commit(_ write: PendingWrite, account: AccountName, now: Date) throws { writes.add(1, ordering: .relaxed) }
    func setState(_ state: AccountState, reason: String?, for name: AccountName) throws {}
    func saveEnrollment(_ seed: AccountSeed, exists: Bool, now: Date) throws { writes.add(1, ordering: .relaxed) }
    func deleteAccount(_ name: AccountName) throws -> Bool { true }
    func rekey(to keyBytes: [UInt8]) throws -> CredentialStore.RekeyResult {
        throw BrokerError(.internalError, "not in this test")
    }
}

/// The daemon's cache, counting lookups.
final class CountingCache: CredentialCache {
    let inner = ServedCache()
    let lookups = Atomic<Int>(0)

    func lookup(_ key: CredentialKey, minValid: TimeInterval, now: Date) -> CachedRead {
        lookups.add(1, ordering: .relaxed)
        return inner.lookup(key, minValid: minValid, now: now)
    }

    func update(_ change: CacheChange) { inner.update(change) }
}

final class SettableWallClock: Sendable {
    private let offset = LockedValue<TimeInterval>(0)
    func now() -> Date { Date().addingTimeInterval(offset.withLock { $0 }) }
    func jump(by seconds: TimeInterval) { offset.withLock { $0 += seconds } }
}

@Suite("Engine: the read path")
struct ReadPathTests {
    @Test("the cache's generation changes with every update; a mark carries the margin in force with it")
    func cacheGenerations() throws {
        let cache = ServedCache()
        let name = try #require(AccountName(rawValue: "alice"))
        let key = CredentialKey(account: name, kind: .scope(.skype))
        let credential = Credential(value: Secret("t"), obtainedAt: Date(), expiresAt: Date() + 3600)
        let changes: [CacheChange] = [
            .account(name, AccountView(state: .active, reason: nil, unavailable: CredentialKinds())),
            .credential(key, ServedCredential(key, credential)), .credential(key, nil), .safetyMargin(120), .loaded,
            .account(name, nil),
        ]
        var seen: Set<UInt64> = [try #require(cache.generation())]
        for change in changes {
            cache.update(change)
            let generation = try #require(cache.generation())
            #expect(seen.insert(generation).inserted, "\(change) left the generation as it was")
        }
        let mark = try #require(cache.mark())
        #expect(mark == CacheMark(generation: try #require(cache.generation()), safetyMargin: 120))
    }

    @Test("a stale read looks the cache up once and is handed the refresh's result")
    func staleReadOneLookup() async throws {
        let identity = FakeIdentity(lifetime: 3600)
        let cache = CountingCache()
        let wall = SettableWallClock()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let realm = Realm(
            name: "fake", loginBase: "https://127.0.0.1:1", userInitializationBase: "https://127.0.0.1:1",
            skypetokenBase: "https://127.0.0.1:1")
        let engine = try BrokerEngine(
            configuration: EngineConfiguration(realms: [realm], scopes: [.ssl]), store: FakeStore(), identity: identity,
            cache: cache,
            clock: .continuous, wallClock: { wall.now() }, random: { 0.5 }, logger: logger)
        let name = try #require(AccountName(rawValue: "alice@example.com"))
        _ = try await engine.enroll(
            EnrollCommand(
                login: name.rawValue, name: nil, realm: nil, credential: .refreshToken(Secret("rt")), cookies: nil))
        #expect(identity.refreshes.load(ordering: .relaxed) == 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await engine.run() }
            // The held token expired: the read must wait for a refresh.
            wall.jump(by: 7200)
            let before = cache.lookups.load(ordering: .relaxed)
            let served = try await engine.token(account: name, scope: .ssl)
            #expect(cache.lookups.load(ordering: .relaxed) - before == 1)
            #expect(served.credential.value == Secret("token-2"))
            #expect(served.credential.expiresAt > wall.now().addingTimeInterval(3000))
            engine.stop()
            try await group.waitForAll()
        }
    }

    @Test(
        "read_wait = 0: a stale read neither waits nor starts a refresh; it is answered at once; an unavailable kind gets its own error"
    )
    func noReadWait() async throws {
        let identity = FakeIdentity(lifetime: 3600)
        let wall = SettableWallClock()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let realm = Realm(
            name: "fake", loginBase: "https://127.0.0.1:1", userInitializationBase: "https://127.0.0.1:1",
            skypetokenBase: "https://127.0.0.1:1")
        var policy = RefreshPolicy()
        policy.readWait = 0
        let engine = try BrokerEngine(
            configuration: EngineConfiguration(realms: [realm], scopes: [.ssl], policy: policy), store: FakeStore(),
            identity: identity, cache: CountingCache(), clock: .continuous, wallClock: { wall.now() },
            random: { 0.5 }, logger: logger)
        let name = try #require(AccountName(rawValue: "alice@example.com"))
        _ = try await engine.enroll(
            EnrollCommand(
                login: name.rawValue, name: nil, realm: nil, credential: .refreshToken(Secret("rt")), cookies: nil))
        // Kinds the account cannot have get their own errors, also with no time to wait.
        for (kind, code) in [(CredentialKind.uic, ErrorCode.credentialUnavailable), (.scope(.hotmail), .unknownScope)] {
            do {
                _ = try await engine.read(account: name, kind: kind)
                Issue.record("\(kind) was served")
            } catch {
                #expect(error.code == code, "\(kind): \(error)")
            }
        }
        // The held token expired, and no scheduler runs: nothing refreshes it.
        wall.jump(by: 7200)
        let started = ContinuousClock.now
        await #expect(throws: BrokerError.self) { try await engine.token(account: name, scope: .ssl) }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(identity.refreshes.load(ordering: .relaxed) == 1)
    }
}
