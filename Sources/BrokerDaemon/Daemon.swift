import BrokerConfig
import BrokerCore
import BrokerEngine
import BrokerServer
import BrokerStore
import CShims
import CoreMetrics
import Foundation
import LiveClient
import Logging
import Prometheus
import ServiceLifecycle
import SystemdSupport
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The wiring, in dependency order: store, identity client, engine, server; then readiness and
/// the service group that runs until SIGTERM.
struct Daemon {
    var source: ConfigurationSource
    var origin: ConfigurationSource.Origin
    var configuration: DaemonConfiguration
    var logger: Logger

    func run() async throws {
        umask(0o077)
        // Trap SIGHUP before anything can send it: its default action would end the process.
        let reloadSignals = await UnixSignalsSequence(trapping: .sighup)
        do {
            try FileManager.default.createDirectory(
                atPath: configuration.stateDirectory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw BrokerError(
                .internalError,
                "cannot create the state directory \(configuration.stateDirectory): \(error.localizedDescription)")
        }
        try Self.createSocketDirectory(for: configuration.socketPath)
        Hygiene.harden()
        // Few malloc arenas: with one per thread, memory freed after a refresh burst stays
        // spread over arenas that are never trimmed (see Supervisor.statusLoop).
        tokenbroker_limit_arenas()
        // Metrics go to a Prometheus registry that GET /metrics renders.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        _ = SocketServer.raiseFileLimit()
        var ownFiles = [configuration.stateDirectory]
        if case .file(let path) = origin { ownFiles.append(path) }
        try Hygiene.refuseWritableByOthers(
            ownFiles + [
                configuration.stateDirectory + "/" + CredentialStore.databaseFileName,
                configuration.resolvedKeyFile,
            ])
        let store: CredentialStore
        do {
            store = try CredentialStore.open(
                directory: URL(fileURLWithPath: configuration.stateDirectory),
                keyFile: URL(fileURLWithPath: configuration.resolvedKeyFile),
                credentialsDirectory: ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"])
        } catch {
            throw error as? BrokerError ?? BrokerError(.internalError, "cannot open the credential store: \(error)")
        }
        let identity = try LiveIdentityClient(realms: configuration.realms, logger: logger)
        let engine: BrokerEngine
        do {
            engine = try BrokerEngine(
                configuration: EngineConfiguration(
                    realms: configuration.realms, scopes: configuration.scopes, policy: configuration.policy),
                store: store, identity: identity, logger: logger)
        } catch {
            try? await identity.shutdown()
            throw error
        }
        let server = SocketServer(
            source: socketSource(), service: engine, policy: configuration.access.running(as: getuid()),
            limits: Self.limits(configuration),
            logger: logger,
            metrics: {
                Self.recordMemory()
                var text = registry.emitToBuffer()
                engine.emitReadMetrics(into: &text)
                return text
            })
        do {
            try await server.bind()
        } catch {
            try? await identity.shutdown()
            throw error as? BrokerError ?? BrokerError(.internalError, "cannot listen: \(error)")
        }

        let supervisor = Supervisor(
            source: source, configurationPath: origin.description, configuration: configuration, engine: engine,
            server: server, identity: identity, reloadSignals: reloadSignals, logger: logger)
        let summary = supervisor.statusLine()
        logger.notice("tokenbrokerd ready: \(summary)", metadata: ["broker.accounts": "\(engine.counts().accounts)"])
        SystemdNotifier.ready(status: summary)

        // Shut down in reverse: the supervisor first (STOPPING=1, and it starts the engine's
        // drain at once), then the server (stop accepting, finish requests), then the engine.
        // The supervisor is named after the program in the group's log lines.
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: EngineService(engine: engine)), .init(service: server),
                    .init(service: supervisor, serviceName: "tokenbrokerd.Supervisor"),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        do {
            try await group.run()
        } catch {
            logger.error("stopped after an error: \(error)")
            try? await identity.shutdown()
            try? store.close()
            throw error
        }
        logger.debug("closing the identity provider's connections")
        do {
            try await identity.shutdown()
        } catch {
            // A refresh the engine's bounded drain abandoned was still in flight. Nothing is lost:
            // a rotated refresh token is committed before it is used. Not a failed stop.
            logger.warning(
                "the identity provider's connections closed with a request in flight",
                metadata: ["broker.reason": "\(type(of: error))"])
        }
        logger.debug("closing the credential store")
        try store.close()
        logger.notice("tokenbrokerd stopped")
    }

    /// The socket systemd passed (a .socket unit), else the configured path.
    /// The socket's directory, when it does not exist (no `RuntimeDirectory=` made it): 0700 for
    /// a user's own daemon, 0755 for root's, whose socket mode and group decide who connects.
    static func createSocketDirectory(for socketPath: String) throws(BrokerError) {
        let directory = (socketPath as NSString).deletingLastPathComponent
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return }
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: false,
                attributes: [.posixPermissions: getuid() == 0 ? 0o755 : 0o700])
        } catch {
            throw BrokerError(
                .internalError, "cannot create the socket's directory \(directory): \(error.localizedDescription)")
        }
    }

    func socketSource() -> SocketSource {
        let activated = SocketActivation.takeListeningSockets()
        guard !activated.isEmpty else {
            return .path(configuration.socketPath, mode: configuration.socketMode, group: configuration.socketGroup)
        }
        let usable = activated.filter { SocketActivation.isListeningUnixStream($0.fd) }
        for other in activated where !usable.contains(other) {
            logger.warning(
                "ignoring a passed descriptor that is not a listening Unix stream socket",
                metadata: [
                    "broker.fd": "\(other.fd)", "broker.fd_name": "\(other.name)",
                ])
            close(other.fd)
        }
        guard let chosen = usable.first(where: { $0.name == "tokenbroker" }) ?? usable.first else {
            logger.warning("no usable socket was passed; binding \(configuration.socketPath)")
            return .path(configuration.socketPath, mode: configuration.socketMode, group: configuration.socketGroup)
        }
        for extra in usable where extra != chosen {
            logger.warning(
                "ignoring an extra passed socket",
                metadata: ["broker.fd": "\(extra.fd)", "broker.fd_name": "\(extra.name)"])
            close(extra.fd)
        }
        let path = SocketActivation.boundPath(chosen.fd) ?? "?"
        logger.info(
            "using the socket passed by systemd",
            metadata: [
                "broker.fd": "\(chosen.fd)", "broker.fd_name": "\(chosen.name)", "broker.socket": "\(path)",
            ])
        if path != configuration.socketPath {
            logger.notice(
                "the passed socket is \(path), not socket.path \(configuration.socketPath); socket.path, mode and group apply only when not socket-activated"
            )
        }
        return .inherited(chosen.fd)
    }

    /// The daemon's memory as gauges, read when `/metrics` is rendered: the secret slab (the
    /// secrets' own bytes, the slots that hold them, all the slab has mapped), malloc's view of
    /// the heap (what the daemon's other objects use, and what is free inside malloc's arenas yet
    /// still counted in the RSS), and the resident set split into anonymous and file-backed pages.
    static func recordMemory() {
        let secrets = SecretMemory.current()
        secretCount.record(Int64(clamping: secrets.live))
        secretPayload.record(Int64(clamping: secrets.payload))
        secretSlots.record(Int64(clamping: secrets.slots))
        secretMapped.record(Int64(clamping: secrets.mapped))
        var inUse: UInt64 = 0
        var free: UInt64 = 0
        var mapped: UInt64 = 0
        tokenbroker_heap_usage(&inUse, &free, &mapped)
        heapInUse.record(Int64(clamping: inUse))
        heapFree.record(Int64(clamping: free))
        if let resident = ResidentMemory.current() {
            residentAnon.record(Int64(clamping: resident.anonymous))
            residentFile.record(Int64(clamping: resident.fileBacked))
        }
    }

    private static let secretCount = Gauge(label: "tokenbroker_secrets")
    private static let secretPayload = Gauge(label: "tokenbroker_secret_bytes", dimensions: [("state", "payload")])
    private static let secretSlots = Gauge(label: "tokenbroker_secret_bytes", dimensions: [("state", "slots")])
    private static let secretMapped = Gauge(label: "tokenbroker_secret_bytes", dimensions: [("state", "mapped")])
    private static let heapInUse = Gauge(label: "tokenbroker_heap_bytes", dimensions: [("state", "in_use")])
    private static let heapFree = Gauge(label: "tokenbroker_heap_bytes", dimensions: [("state", "free")])
    private static let residentAnon = Gauge(label: "tokenbroker_resident_bytes", dimensions: [("kind", "anon")])
    private static let residentFile = Gauge(label: "tokenbroker_resident_bytes", dimensions: [("kind", "file")])

    static func limits(_ configuration: DaemonConfiguration) -> ServerLimits {
        var limits = ServerLimits()
        limits.idleTimeout = .milliseconds(Int64(configuration.idleTimeout * 1000))
        limits.maxHeaderBytes = configuration.maxHeaderBytes
        limits.maxBodyBytes = configuration.maxBodyBytes
        limits.maxConnections = configuration.maxConnections
        limits.requestTimeout = .milliseconds(Int64(configuration.requestTimeout * 1000))
        return limits
    }
}

/// The engine as a service that, once its scheduler has stopped (the supervisor stops it early so
/// that its drain runs alongside the server's), waits for the group to reach it.
struct EngineService: Service {
    let engine: BrokerEngine

    func run() async throws {
        try await engine.run()
        try? await gracefulShutdown()
    }
}
