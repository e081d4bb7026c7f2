import BrokerCore
import BrokerEngine
import BrokerStore
import Foundation
import LiveClient
import LiveSim
import Logging
import TestSupport
import Testing

/// The engine in-process, on an injected monotonic clock and an adjustable wall clock,
/// against livesim over HTTPS.
struct EngineHarness {
    let engine: BrokerEngine
    let clock: ManualClock
    let wall: AdjustableWallClock
    let store: CredentialStore
    let identity: LiveIdentityClient
    let directory: TemporaryDirectory

    init(sim: LiveSimFixture, policy: RefreshPolicy = RefreshPolicy()) throws {
        directory = try TemporaryDirectory()
        try sim.writeCA(to: directory.file("ca.pem"))
        let base = sim.base()
        let realm = Realm(
            name: "sim", loginBase: base, userInitializationBase: base, skypetokenBase: base,
            caFile: directory.file("ca.pem"))
        store = try CredentialStore.open(
            directory: URL(fileURLWithPath: directory.file("state")),
            keyFile: URL(fileURLWithPath: directory.file("key")))
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        identity = try LiveIdentityClient(realms: [realm], logger: logger)
        clock = ManualClock()
        wall = AdjustableWallClock()
        let wall = self.wall
        engine = try BrokerEngine(
            configuration: EngineConfiguration(realms: [realm], policy: policy), store: store, identity: identity,
            clock: MonotonicClock(clock), wallClock: { wall.now() }, logger: logger)
    }

    func shutdown() async throws {
        try await identity.shutdown()
        try store.close()
        directory.cleanup()
    }

    /// Polls in real time until `condition` holds (refreshes go over real HTTPS).
    func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}

@Suite("Time: wall-clock expiry, suspend and clock jumps")
struct ClockTests {
    @Test(
        "a wall-clock jump of hours with the monotonic clock standing still: refreshes within the wake bound, no expired token served"
    )
    func clockJump() async throws {
        try await withLiveSim({ $0.tokenLifetime = 3600 }) { sim in
            let harness = try EngineHarness(sim: sim)
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            _ = try await harness.engine.enroll(
                EnrollCommand(
                    login: "alice@example.com", name: nil, realm: nil, credential: .refreshToken(Secret(refreshToken)),
                    cookies: nil))
            let name = try #require(AccountName(rawValue: "alice@example.com"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await harness.engine.run() }
                // Every scope gets its first token.
                #expect(
                    try await harness.eventually {
                        Scope.allCases.allSatisfy {
                            if case .fresh = harness.engine.cachedRead(account: name, scope: $0, minValid: 0) {
                                true
                            } else {
                                false
                            }
                        }
                    })
                let before = try await sim.counters()["refreshes"] as? Int ?? 0
                // Suspend for three hours: the wall clock jumps, the monotonic clock does not move.
                harness.wall.jump(by: 3 * 3600)
                for scope in Scope.allCases {
                    guard case .stale = harness.engine.cachedRead(account: name, scope: scope, minValid: 0) else {
                        Issue.record("an expired \(scope.alias) token was still served from the cache")
                        continue
                    }
                }
                // The scheduler sleeps at most wakeInterval (30 s) on the monotonic clock, then sees the new wall time.
                #expect(try await harness.eventually(2) { harness.clock.sleepers > 0 })
                harness.clock.advance(by: .seconds(30))
                #expect(
                    try await harness.eventually {
                        (try await sim.counters()["refreshes"] as? Int ?? 0) >= before + Scope.allCases.count
                    })
                for scope in Scope.allCases {
                    let served = try await harness.engine.token(account: name, scope: scope)
                    let left = served.token.expiresAt.timeIntervalSince(harness.wall.now())
                    #expect(left > 3000)
                    #expect(try await sim.validate(served.token.value.exposed)["valid"] as? Bool == true)
                }
                harness.engine.stop()
                try await group.waitForAll()
            }
            try await harness.shutdown()
        }
    }

    @Test("a read of an expired token refreshes at once instead of serving it")
    func expiredReadRefreshes() async throws {
        try await withLiveSim({ $0.tokenLifetime = 3600 }) { sim in
            let harness = try EngineHarness(sim: sim)
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            let report = try await harness.engine.enroll(
                EnrollCommand(
                    login: "alice@example.com", name: nil, realm: nil, credential: .refreshToken(Secret(refreshToken)),
                    cookies: nil))
            #expect(report.state == .active)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await harness.engine.run() }
                let name = try #require(AccountName(rawValue: "alice@example.com"))
                let first = try await harness.engine.token(account: name, scope: .skype)
                harness.wall.jump(by: 7200)
                let second = try await harness.engine.token(account: name, scope: .skype)
                #expect(second.token.value != first.token.value)
                #expect(second.token.expiresAt > harness.wall.now())
                harness.engine.stop()
                try await group.waitForAll()
            }
            try await harness.shutdown()
        }
    }
}
