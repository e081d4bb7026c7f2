import BrokerCore
import Foundation
import Locks
import Logging
import ServiceLifecycle
import Synchronization

/// The refresh service: the executor of the `RefreshMachine`. It keeps the machine (and the
/// reads waiting on it) behind one lock, runs the machine's jobs in a discarding task group
/// through the identity provider and the store, carries out the effects, and keeps the cache
/// that reads are served from. Every decision is the machine's; this class only does the I/O.
///
/// Deadlines are wall-clock times from the server's answers; the scheduler sleeps on an injected
/// monotonic clock for at most `wakeInterval`, so a suspend or a clock jump is noticed.
package final class BrokerEngine: Service, Sendable {
    let persistence: any CredentialPersisting
    let identity: any IdentityProviding
    let clock: MonotonicClock
    let wallClock: @Sendable () -> Date
    let random: @Sendable () -> Double
    let logger: Logger
    let cache: any CredentialCache
    let locked: LockedValue<Locked>
    private let configurationBox: LockedValue<EngineConfiguration>
    let wakeup = Wakeup()
    let metrics = EngineMetrics()
    let hub = EventHub()
    private let heartbeat = LockedValue<Duration>(.zero)
    /// How far the start-up load of the store has come; its lock also keeps a batch's read and
    /// its adding to the machine together, apart from a logout (see `Engine+Loading.swift`).
    let loading = LockedValue(LoadProgress())
    let loadDone = Atomic<Bool>(false)
    let loadBatchSize: Int
    /// Held while an enrollment writes a new grant and adds it to the machine, and while a job
    /// checks that its account is the enrollment it started for and reads the stored refresh
    /// token: a job of the old enrollment never reads (and spends) the new one's token.
    let grantSwitch = LockedValue(())

    /// The machine and the reads waiting on it: one lock, so that a result is handed to exactly
    /// the reads that waited for it.
    struct Locked: ~Copyable {
        var machine: RefreshMachine
        var waiters = WaiterTable()
    }

    package convenience init(
        configuration: EngineConfiguration, store: any CredentialPersisting, identity: any IdentityProviding,
        clock: MonotonicClock = .continuous, wallClock: @escaping @Sendable () -> Date = { Date() }, logger: Logger
    ) throws(BrokerError) {
        try self.init(
            configuration: configuration, store: store, identity: identity, cache: ServedCache(), clock: clock,
            wallClock: wallClock,
            random: { Double.random(in: 0..<1) }, logger: logger)
    }

    package init(
        configuration: EngineConfiguration, store: any CredentialPersisting, identity: any IdentityProviding,
        cache: any CredentialCache, clock: MonotonicClock, wallClock: @escaping @Sendable () -> Date,
        random: @escaping @Sendable () -> Double, logger: Logger, loadBatchSize: Int = 500
    ) throws(BrokerError) {
        self.loadBatchSize = loadBatchSize
        self.configurationBox = LockedValue(configuration)
        self.persistence = store
        self.identity = identity
        self.cache = cache
        self.clock = clock
        self.wallClock = wallClock
        self.random = random
        self.logger = logger
        self.locked = LockedValue(
            Locked(
                machine: RefreshMachine(
                    policy: configuration.policy, scopes: configuration.scopes,
                    realms: configuration.realms)))
        cache.update(.safetyMargin(configuration.policy.safetyMargin))
        // Accounts are loaded after start, a batch at a time (`run`), or one by one as reads ask
        // for them: start-up does not grow with the number of accounts. Counting them is one query.
        do { _ = try store.accountCounts() } catch { throw Self.brokerError(error) }
        loading.withLock { $0.started = clock.now }
    }

    package var configuration: EngineConfiguration { configurationBox.withLock { $0 } }

    /// Why writes to the store fail, while they do (a full disk, a read-only file system).
    package var degraded: String? { locked.withLock { $0.machine.storageFailure } }

    /// When the scheduler last went round its loop, on the monotonic clock: a health signal.
    package var lastSchedulerPass: Duration { heartbeat.withLock { $0 } }

    /// The monotonic clock's reading now, to compare with `lastSchedulerPass`.
    package var monotonicNow: Duration { clock.now }

    package func now() -> Date { wallClock() }

    /// Replaces realms, scopes and policy; stored tokens and connections are untouched.
    package func reconfigure(_ configuration: EngineConfiguration) {
        configurationBox.withLock { $0 = configuration }
        cache.update(.safetyMargin(configuration.policy.safetyMargin))
        let now = wallClock()
        carryOut(
            update {
                $0.reconfigure(
                    policy: configuration.policy, scopes: configuration.scopes,
                    realms: configuration.realms, now: now)
            })
        wakeup.signal()
    }

    // MARK: - Service

    package func run() async throws {
        try await withGracefulShutdownHandler {
            await self.schedule()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    /// Stops scheduling; running refreshes get a bounded time to finish and commit.
    package func stop() {
        locked.withLock { $0.machine.stop() }
        wakeup.signal()
    }

    private func schedule() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.loadInBackground() }
            while true {
                let now = wallClock()
                heartbeat.withLock { $0 = clock.now }
                let random = self.random
                let (jobs, wake, stopping) = locked.withLock { locked in
                    let jobs = locked.machine.due(now: now, random: random)
                    return (jobs, locked.machine.nextWake, locked.machine.stopping)
                }
                if stopping { break }
                for job in jobs {
                    group.addTask {
                        await self.perform(job)
                        self.wakeup.signal()
                    }
                }
                let delay = min(max(wake.timeIntervalSince(now), 0.005), configuration.policy.wakeInterval)
                await wakeup.wait(seconds: delay, clock: clock)
            }
            // Let running refreshes finish and commit for a bounded time, then abandon them.
            let deadline = clock.now + .seconds(5)
            while locked.withLock({ !$0.machine.running.isEmpty }), clock.now < deadline {
                await wakeup.wait(seconds: 0.1, clock: clock)
            }
            group.cancelAll()
        }
    }

    // MARK: - Jobs

    /// Runs a job step by step until the machine has no next step for it.
    private func perform(_ first: Job) async {
        if case .persist = first.step {} else { metrics.late(by: wallClock().timeIntervalSince(first.dueAt)) }
        var next: Job? = first
        while let job = next {
            next = nil
            let started = wallClock()
            let outcome = await run(job, now: started)
            var effects = apply(outcome)
            while !effects.isEmpty {
                var more: [Effect] = []
                for effect in effects {
                    switch effect {
                    case .persist(let name, let write):
                        more += apply(.persisted(name, failure: persist(write, account: name)))
                    case .run(let step):
                        next = step
                    default:
                        execute(effect)
                    }
                }
                effects = more
            }
        }
    }

    /// One call to the provider (or the store), as an outcome.
    private func run(_ job: Job, now: Date) async -> Outcome {
        if case .persist(let write) = job.step {
            return .persisted(job.key.account, failure: persist(write, account: job.key.account))
        }
        guard let realm = try? configuration.realm(named: job.realm) else {
            return .failed(job, .rejected(code: "unknown_realm", description: "realm \(job.realm) is not configured"))
        }
        do throws(RefreshFailure) {
            switch job.step {
            case .refreshScope(let scope, let inMemory):
                // The machine keeps the refresh token only until the store has it: read it now,
                // and report it in the job, so that the machine judges rotation against it.
                var job = job
                let refreshToken: Secret
                if let inMemory {
                    refreshToken = inMemory
                } else {
                    refreshToken = try storedRefreshToken(for: job)
                    job.step = .refreshScope(scope, refreshToken: refreshToken)
                }
                return .granted(
                    job, try await identity.refresh(realm: realm, refreshToken: refreshToken, scope: scope, now: now))
            case .skypetoken(let accessToken):
                return .obtained(job, try await identity.skypetoken(realm: realm, accessToken: accessToken, now: now))
            case .silentSignIn(let cookies):
                return .signedIn(job, try await identity.silentSignIn(realm: realm, cookies: cookies, now: now))
            case .passwordSignIn(let login, let password):
                return .signedIn(
                    job, try await identity.passwordSignIn(realm: realm, login: login, password: password, now: now))
            case .userInitialization(let cookies):
                return .obtained(job, try await identity.userInitialization(realm: realm, cookies: cookies, now: now))
            case .rstSites(let login, let password, let sites):
                return .obtainedSites(
                    job,
                    try await identity.rstSites(realm: realm, login: login, password: password, sites: sites, now: now))
            case .skylogin(let request, let clientKey):
                return .obtained(
                    job, try await identity.skylogin(realm: realm, request: request, clientKey: clientKey, now: now))
            case .rstTicket(let login, let password):
                return .obtained(
                    job, try await identity.rstTicket(realm: realm, login: login, password: password, now: now))
            case .impossible(let failure):
                throw failure
            case .persist:
                preconditionFailure("handled above")
            }
        } catch {
            return .failed(job, error)
        }
    }

    /// The job's account's refresh token as the store has it, if the account is still the
    /// enrollment the job was made for (else the job's result would be dropped anyway, and the
    /// token in the store may be a new enrollment's, which this job must not spend).
    private func storedRefreshToken(for job: Job) throws(RefreshFailure) -> Secret {
        let name = job.key.account
        let stored: Secret?
        do {
            stored = try grantSwitch.withLock { _ -> Secret? in
                guard locked.withLock({ $0.machine.accounts[name]?.generation }) == job.generation else {
                    throw BrokerError(.notFound, "the account was enrolled again or removed")
                }
                return try persistence.storedRefreshToken(name)
            }
        } catch {
            throw .transient("cannot read the refresh token from the store: \(Self.brokerError(error).message)")
        }
        guard let stored else { throw .grantRevoked("no refresh token is stored") }
        return stored
    }

    /// Writes secrets; nil when the store took them, else why not.
    private func persist(_ write: PendingWrite, account: AccountName) -> String? {
        do {
            try persistence.commit(write, account: account, now: wallClock())
            return nil
        } catch {
            return Self.brokerError(error).message
        }
    }

    // MARK: - Effects

    /// Applies an outcome to the machine. Effects on the cache and the waiting reads are carried
    /// out under the machine's lock, in the machine's order; the rest are returned.
    func apply(_ outcome: Outcome) -> [Effect] {
        let now = wallClock()
        let random = self.random
        return update { $0.apply(outcome, now: now, random: random) }
    }

    /// Runs `change` on the machine under its lock, publishes to the cache and to the event
    /// stream, takes the waiting reads' continuations there, and resumes those outside the lock.
    func update(_ change: (inout RefreshMachine) -> [Effect]) -> [Effect] {
        let (rest, resumes) = locked.withLock { locked -> ([Effect], [WaiterTable.Resume]) in
            var rest: [Effect] = []
            var resumes: [WaiterTable.Resume] = []
            for effect in change(&locked.machine) {
                switch effect {
                case .publish(let key, let credential):
                    cache.update(.credential(key, credential.map { ServedCredential(key, $0) }))
                case .publishAccount(let name, let view):
                    cache.update(.account(name, view))
                case .deliver(let key, let result):
                    resumes += locked.waiters.take(key, result)
                case .announce(let event):
                    // Under the lock: readers see the changes in the machine's order.
                    hub.publish(.account(event))
                default:
                    rest.append(effect)
                }
            }
            return (rest, resumes)
        }
        for resume in resumes { resume() }
        return rest
    }

    /// Carries out effects that need no answer: logs, counters, state writes.
    func carryOut(_ effects: [Effect]) {
        for effect in effects { execute(effect) }
    }

    private func execute(_ effect: Effect) {
        switch effect {
        case .saveState(let name, let state, let reason):
            do { try persistence.setState(state, reason: reason, for: name) } catch {
                logger.error("could not save account state", metadata: ["broker.account": "\(name)"])
            }
        case .count(let result):
            metrics.refreshed(result)
        case .log(let event):
            let metadata = event.metadata.mapValues { Logger.MetadataValue.string($0) }
            switch event.level {
            case .info: logger.info("\(event.message)", metadata: metadata)
            case .notice: logger.notice("\(event.message)", metadata: metadata)
            case .warning: logger.warning("\(event.message)", metadata: metadata)
            case .error: logger.error("\(event.message)", metadata: metadata)
            }
        case .persist, .run, .publish, .publishAccount, .deliver, .announce:
            assertionFailure("\(effect) is carried out by the job that asked for it")
        }
    }

    static func brokerError(_ error: any Error) -> BrokerError {
        error as? BrokerError ?? BrokerError(.internalError, "storage error: \(type(of: error))", cause: error)
    }
}
