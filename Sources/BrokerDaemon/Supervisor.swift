import BrokerConfig
import BrokerCore
import BrokerEngine
import BrokerServer
import CShims
import Foundation
import LiveClient
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ServiceLifecycle
import SystemdSupport
import UnixSignals

/// The daemon's conversation with systemd, as a service: the STATUS line, watchdog pings that
/// follow a real health check, configuration reloads on SIGHUP, and STOPPING=1 at shutdown.
final class Supervisor: Service, Sendable {
    /// Where a reload reads the configuration from.
    let source: ConfigurationSource
    /// The file it was read from, or the built-in defaults, for the log.
    let configurationPath: String
    let engine: BrokerEngine
    let server: SocketServer
    let identity: LiveIdentityClient
    let reloadSignals: UnixSignalsSequence
    let logger: Logger
    /// The configuration in force.
    private let current: NIOLockedValueBox<DaemonConfiguration>
    private let lastStatus = NIOLockedValueBox<String>("")
    let health: HealthCheck

    init(
        source: ConfigurationSource, configurationPath: String, configuration: DaemonConfiguration,
        engine: BrokerEngine, server: SocketServer, identity: LiveIdentityClient, reloadSignals: UnixSignalsSequence,
        logger: Logger
    ) {
        self.source = source
        self.configurationPath = configurationPath
        self.current = NIOLockedValueBox(configuration)
        self.engine = engine
        self.server = server
        self.identity = identity
        self.reloadSignals = reloadSignals
        self.logger = logger
        self.health = HealthCheck(
            loops: [{ server.execute($0) }]
                + MultiThreadedEventLoopGroup.singleton.makeIterator().map { loop in
                    { @Sendable work in loop.execute(work) }
                },
            engine: engine)
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.statusLoop() }
            group.addTask { await self.watchdogLoop() }
            group.addTask { await self.reloadLoop() }
            #if TOKENBROKER_TESTING
                group.addTask { await TestFaults.arm(server: self.server, logger: self.logger) }
            #endif
            // Runs until the group shuts down.
            try? await gracefulShutdown()
            SystemdNotifier.stopping(status: "stopping: finishing requests and refreshes")
            logger.notice("stopping")
            engine.stop()
            group.cancelAll()
        }
    }

    // MARK: - Status

    /// "2 accounts, 1 needs sign-in, next refresh in 41 min".
    func statusLine() -> String {
        let (accounts, needsReauth) = engine.counts()
        guard accounts > 0 else { return "no accounts enrolled" }
        var parts = ["\(accounts) account\(accounts == 1 ? "" : "s")"]
        parts.append(needsReauth == 1 ? "1 needs sign-in" : "\(needsReauth) need sign-in")
        if let next = engine.nextRefresh() {
            let seconds = next.timeIntervalSince(engine.now())
            parts.append(seconds <= 1 ? "refreshing now" : "next refresh in " + Self.describe(seconds))
        } else {
            parts.append("no refresh scheduled")
        }
        if engine.degraded != nil { parts.append("DEGRADED: storage writes failing") }
        return parts.joined(separator: ", ")
    }

    static func describe(_ seconds: TimeInterval) -> String {
        let s = Int(seconds.rounded(.up))
        if s < 90 { return "\(s) s" }
        if s < 90 * 60 { return "\((s + 30) / 60) min" }
        let minutes = (s + 30) / 60
        return "\(minutes / 60) h \(minutes % 60) min"
    }

    private func statusLoop() async {
        var round = 0
        while !Task.isCancelled {
            publishStatus()
            // Every refresh replaces a token of about a kilobyte; give the freed pages back to
            // the kernel every 30 s, or the RSS stays at its high-water mark after a burst.
            round += 1
            if round % 6 == 0 { tokenbroker_trim_heap() }
            try? await Task.sleep(for: .seconds(5))
        }
    }

    private func publishStatus(force: Bool = false) {
        let line = statusLine()
        let changed = lastStatus.withLockedValue { last in
            defer { last = line }
            return last != line
        }
        if changed || force { SystemdNotifier.status(line) }
    }

    // MARK: - Watchdog

    /// Pings at half of WatchdogSec, each time only after the event loops answered a round trip
    /// and the refresh scheduler has gone round recently. A missed check means no ping: systemd
    /// then kills the process and, with Restart=on-failure, starts it again.
    private func watchdogLoop() async {
        guard let interval = SystemdNotifier.watchdogInterval() else { return }
        let period = interval / 2
        let timeout = min(interval / 4, .seconds(5))
        logger.info(
            "watchdog enabled",
            metadata: [
                "broker.watchdog_usec":
                    "\(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)"
            ])
        var failing = false
        while !Task.isCancelled {
            let started = ContinuousClock.now
            let wakeInterval = current.withLockedValue { $0.policy.wakeInterval }
            if let problem = await health.check(
                timeout: timeout, schedulerWindow: .seconds(wakeInterval) + .seconds(15))
            {
                if !failing {
                    logger.error(
                        "health check failed; withholding the watchdog ping: \(problem)",
                        metadata: ["broker.event": "unhealthy"])
                }
                failing = true
            } else {
                if failing { logger.notice("health check passes again") }
                failing = false
                SystemdNotifier.watchdog()
            }
            try? await Task.sleep(until: started + period)
        }
    }

    // MARK: - Reload

    private func reloadLoop() async {
        for await _ in reloadSignals {
            await reload()
        }
    }

    /// Re-reads the configuration and applies realms, scopes, refresh policy, access rules and log
    /// level. Connections and stored tokens are untouched. A configuration that does not load,
    /// or whose CA files cannot be read, is refused and the old one stays in force.
    func reload() async {
        SystemdNotifier.reloading(status: "reloading the configuration")
        logger.notice("reloading the configuration", metadata: ["broker.config": "\(configurationPath)"])
        do {
            // Without --config, a file put at the default path since the start is read now.
            let (new, origin) = try source.load()
            try Self.checkSignIn(old: current.withLockedValue { $0 }.realms, new: new.realms, accounts: engine)
            try identity.update(realms: new.realms)
            engine.reconfigure(EngineConfiguration(realms: new.realms, scopes: new.scopes, policy: new.policy))
            server.update(policy: new.access.running(as: getuid()))
            LogSetup.level = Logger.Level(rawValue: new.logLevel) ?? .info
            server.followLogLevel()
            let old = current.withLockedValue { old in
                defer { old = new }
                return old
            }
            let ignored = Self.restartOnly(old: old, new: new)
            if !ignored.isEmpty {
                logger.warning(
                    "these settings changed but apply only after a restart: \(ignored.joined(separator: ", "))",
                    metadata: [
                        "broker.config": "\(configurationPath)", "broker.keys": "\(ignored.joined(separator: ","))",
                    ])
            }
            logger.notice(
                "configuration reloaded",
                metadata: [
                    "broker.config": "\(origin.description)",
                    "broker.realms": "\(new.realms.map(\.name).joined(separator: ","))",
                    "broker.access_rules": "\(new.access.rules.count)",
                ])
        } catch {
            logger.error(
                "configuration reload refused; the previous configuration stays in force: \(error.message)",
                metadata: [
                    "broker.config": "\(configurationPath)", "broker.error": "invalid_configuration",
                ])
        }
        SystemdNotifier.ready(status: statusLine())
        lastStatus.withLockedValue { $0 = "" }
    }

    /// A realm with accounts keeps its `sign_in`: its accounts hold the credentials of one kind
    /// (refresh tokens, or RST tickets and a password).
    static func checkSignIn(old: [Realm], new: [Realm], accounts engine: BrokerEngine) throws(BrokerError) {
        let inUse = Set(engine.accountNames().compactMap { engine.status($0)?.realm })
        for realm in new where inUse.contains(realm.name) {
            guard let before = old.first(where: { $0.name == realm.name }), before.signIn != realm.signIn else {
                continue
            }
            throw BrokerError(
                .badRequest,
                "realm \(realm.name) has accounts, so its sign_in cannot change from \(before.signIn.rawValue) to "
                    + "\(realm.signIn.rawValue) (log its accounts out first, or name a new realm)")
        }
    }

    /// Settings a running daemon cannot change (`DaemonConfiguration.restartKeys`).
    static func restartOnly(old: DaemonConfiguration, new: DaemonConfiguration) -> [String] {
        DaemonConfiguration.restartNeeded(from: old, to: new)
    }
}
