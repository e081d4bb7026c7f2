import BrokerCore
import BrokerEngine
import BrokerStore
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

/// Start-up does not load the store: accounts come in a batch at a time, or one by one as they
/// are asked for. Here nothing runs the background load (`run` is never called), so every step
/// below is the on-demand path.
@Suite("Engine: loading the store after start")
struct LazyLoadTests {
    func name(_ i: Int) -> AccountName { AccountName(rawValue: "user-\(i)@example.com")! }

    /// A store of `count` accounts, each with a valid ssl token and one in needs_reauth.
    func seededStore(_ directory: TemporaryDirectory, count: Int) throws -> CredentialStore {
        let store = try CredentialStore.open(
            directory: URL(fileURLWithPath: directory.file("state")),
            keyFile: URL(fileURLWithPath: directory.file("key")))
        let now = Date()
        for i in 0..<count {
            try store.createAccount(
                name: name(i), realm: "fake", login: name(i).rawValue, refreshToken: Secret("rt-\(i)"),
                accessTokens: [
                    AccessToken(
                        value: Secret("stored-\(i)"), scope: .ssl, obtainedAt: now,
                        expiresAt: now.addingTimeInterval(3600))
                ], password: nil, cookies: nil, now: now)
        }
        try store.setState(.needsReauth, reason: "revoked", for: name(count - 1))
        return store
    }

    func engine(_ store: CredentialStore, identity: FakeIdentity) throws -> BrokerEngine {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let realm = Realm(
            name: "fake", loginBase: "https://127.0.0.1:1", userInitializationBase: "https://127.0.0.1:1",
            skypetokenBase: "https://127.0.0.1:1")
        return try BrokerEngine(
            configuration: EngineConfiguration(realms: [realm], scopes: [.ssl]), store: store, identity: identity,
            cache: ServedCache(), clock: .continuous, wallClock: { Date() }, random: { 0.5 }, logger: logger,
            loadBatchSize: 4)
    }

    @Test(
        "before the load: counts come from the store, a read or status loads its account, an unknown name is not_found; listing finishes the load; a logout is not undone by it"
    )
    func onDemand() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let store = try seededStore(directory, count: 10)
        defer { try? store.close() }
        let identity = FakeIdentity(lifetime: 3600)
        let engine = try engine(store, identity: identity)

        // Nothing loaded, everything counted; the server is told that listing would wait for the load.
        #expect(engine.counts() == (accounts: 10, needsReauth: 1))
        #expect(!engine.accountsLoaded)
        // The cache does not know user-7 yet: the slow path loads it and serves the stored token.
        guard case .stale = engine.cachedRead(account: name(7), scope: .ssl, minValid: 0) else {
            Issue.record("an account not loaded yet must take the slow path, not be not_found")
            return
        }
        let served = try await engine.token(account: name(7), scope: .ssl)
        #expect(served.credential.value == Secret("stored-7"))
        #expect(identity.refreshes.load(ordering: .relaxed) == 0)
        guard case .fresh = engine.cachedRead(account: name(7), scope: .ssl, minValid: 0) else {
            Issue.record("once loaded, the account is served from the cache")
            return
        }
        #expect(engine.status(name(3))?.login == name(3).rawValue)
        #expect(engine.status(name(9))?.state == .needsReauth)
        await #expect(throws: BrokerError.self) { try await engine.token(account: name(99), scope: .ssl) }
        #expect(engine.status(name(99)) == nil)

        // A logout before the load reaches the account: the load does not bring it back.
        try engine.logout(name(5))
        #expect(engine.accountNames() == (0..<10).filter { $0 != 5 }.map(name).sorted())
        #expect(engine.accountsLoaded)
        #expect(engine.counts() == (accounts: 9, needsReauth: 1))
        // Loaded: an unknown account is now not_found straight from the cache.
        guard case .notFound = engine.cachedRead(account: name(99), scope: .ssl, minValid: 0) else {
            Issue.record("after the load, an unknown account is not_found in the cache")
            return
        }
        #expect(identity.refreshes.load(ordering: .relaxed) == 0)
    }
}
