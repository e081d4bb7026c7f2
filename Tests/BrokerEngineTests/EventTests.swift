import BrokerCore
import BrokerEngine
import Foundation
import Locks
import Logging
import Testing

/// Refreshes as `FakeIdentity` does, unless told to fail them: transiently, or for good.
final class ScriptedIdentity: IdentityProviding {
    enum Mode { case grant, transient, revoked }
    let mode = LockedValue<Mode>(.grant)
    let inner = FakeIdentity(lifetime: 3600)

    func refresh(realm: Realm, refreshToken: Secret, scope: Scope, now: Date) async throws(RefreshFailure) -> TokenGrant
    {
        switch mode.withLock({ $0 }) {
        case .grant: return try await inner.refresh(realm: realm, refreshToken: refreshToken, scope: scope, now: now)
        case .transient: throw .transient("the server answered 503")
        case .revoked: throw .grantRevoked("AADSTS70000: the grant was revoked")
        }
    }

    func signIn(realm: Realm, login: String, password: Secret, now: Date) async throws(BrokerError) -> SignInGrant {
        try await inner.signIn(realm: realm, login: login, password: password, now: now)
    }
    func redeem(_ redirectURL: String, now: Date) throws(BrokerError) -> TokenGrant {
        try inner.redeem(redirectURL, now: now)
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
    { throw .transient("no") }
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

@Suite("Engine: account events")
struct EngineEventTests {
    @Test("enrolled, refreshed, refresh_failed, needs_reauth, reauthenticated, logged_out: in order, without secrets")
    func lifecycle() async throws {
        let identity = ScriptedIdentity()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let realm = Realm(
            name: "fake", loginBase: "https://127.0.0.1:1", userInitializationBase: "https://127.0.0.1:1",
            skypetokenBase: "https://127.0.0.1:1")
        var policy = RefreshPolicy()
        policy.readWait = 0.5
        let engine = try BrokerEngine(
            configuration: EngineConfiguration(realms: [realm], scopes: [.ssl, .contacts], policy: policy),
            store: FakeStore(),
            identity: identity, cache: CountingCache(), clock: .continuous, wallClock: { Date() }, random: { 0.5 },
            logger: logger)
        let name = try #require(AccountName(rawValue: "alice@example.com"))
        var events = engine.events().makeAsyncIterator()
        func next() async throws -> AccountEvent {
            guard case .account(let event) = await events.next() else { throw CancellationError() }
            return event
        }
        let enroll = EnrollCommand(
            login: name.rawValue, name: nil, realm: nil, credential: .refreshToken(Secret("rt-secret")), cookies: nil)
        _ = try await engine.enroll(enroll)

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await engine.run() }
            let enrolled = try await next()
            #expect(enrolled.change == .enrolled && enrolled.account == name && enrolled.credential == nil)
            #expect(enrolled.nextRefreshAt != nil)
            // The scope the enrollment did not bring is refreshed at once.
            let refreshed = try await next()
            #expect(refreshed.change == .refreshed && refreshed.credential == .scope(.contacts))
            #expect(refreshed.nextRefreshAt.map { $0 > Date().addingTimeInterval(1800) } == true)

            identity.mode.withLock { $0 = .transient }
            await #expect(throws: BrokerError.self) {
                try await engine.token(account: name, scope: .ssl, minValid: 3600)
            }
            let failed = try await next()
            #expect(failed.change == .refreshFailed && failed.credential == .scope(.ssl))
            #expect(failed.errorCode == .temporarilyUnavailable && failed.message == "the server answered 503")
            #expect(failed.nextRefreshAt != nil)

            identity.mode.withLock { $0 = .revoked }
            // Another read asks for the next attempt at once.
            await #expect(throws: BrokerError.self) {
                try await engine.token(account: name, scope: .ssl, minValid: 3600)
            }
            while true {
                // Retries of the transient failure may come first.
                let event = try await next()
                if event.change == .refreshFailed { continue }
                #expect(event.change == .needsReauth && event.errorCode == .needsReauth)
                #expect(event.message?.contains("revoked") == true && event.nextRefreshAt == nil)
                break
            }

            identity.mode.withLock { $0 = .grant }
            _ = try await engine.enroll(enroll)
            let again = try await next()
            #expect(again.change == .reauthenticated && again.account == name)
            try engine.logout(name)
            while true {
                // The new grant's other scope may be refreshed before the account is gone.
                let event = try await next()
                if event.change == .refreshed { continue }
                #expect(event.change == .loggedOut && event.account == name)
                break
            }
            engine.stop()
            try await group.waitForAll()
        }
    }
}
