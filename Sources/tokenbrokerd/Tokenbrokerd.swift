import ArgumentParser
import BrokerConfig
import BrokerCore
import BrokerEngine
import BrokerServer
import BrokerStore
import Foundation
import LiveClient
import Logging
import ServiceLifecycle

/// `tokenbrokerd`: parses arguments, reads the configuration, and wires the store, the identity
/// client, the refresh engine and the socket server into one service group.
@main
struct Tokenbrokerd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenbrokerd",
        abstract: "Keeps MSN/Skype Passport tokens fresh and serves them over a Unix socket.",
        version: "0.1.0")

    @Option(help: "The configuration file.")
    var config = DaemonConfiguration.defaultPath

    @Flag(help: "Check the configuration and exit.")
    var checkConfig = false

    func run() async throws {
        let configuration: DaemonConfiguration
        do {
            configuration = try DaemonConfiguration.load(path: config)
        } catch {
            FileHandle.standardError.write(Data("tokenbrokerd: \(error.message)\n".utf8))
            throw ExitCode(78)
        }
        if checkConfig {
            print("tokenbrokerd: configuration \(config) is valid")
            return
        }
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "tokenbrokerd")
        logger.logLevel = level
        do {
            try await Daemon(configuration: configuration, logger: logger).run()
        } catch let error as BrokerError {
            logger.critical("cannot start", metadata: ["error.type": "\(error.code.rawValue)", "error.message": "\(error.message)"])
            throw ExitCode(1)
        }
    }
}

/// The wiring, in dependency order: store, identity client, engine, server.
struct Daemon {
    var configuration: DaemonConfiguration
    var logger: Logger

    func run() async throws {
        umask(0o077)
        try FileManager.default.createDirectory(
            atPath: configuration.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try CredentialStore.open(
            directory: URL(fileURLWithPath: configuration.stateDirectory), keyFile: URL(fileURLWithPath: configuration.resolvedKeyFile))
        let identity = try LiveIdentityClient(realms: configuration.realms, logger: logger)
        let engine = try BrokerEngine(
            configuration: EngineConfiguration(realms: configuration.realms, scopes: configuration.scopes, policy: configuration.policy),
            store: store, identity: identity, logger: logger)
        var limits = ServerLimits()
        limits.idleTimeout = .milliseconds(Int64(configuration.idleTimeout * 1000))
        limits.maxHeaderBytes = configuration.maxHeaderBytes
        limits.maxBodyBytes = configuration.maxBodyBytes
        let server = SocketServer(
            source: .path(configuration.socketPath, mode: configuration.socketMode, group: configuration.socketGroup),
            engine: engine, policy: configuration.access, limits: limits, logger: logger)
        try await server.bind()
        logger.notice("tokenbrokerd ready", metadata: ["broker.accounts": "\(engine.counts().accounts)"])

        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: engine), .init(service: server)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await group.run()
        try await identity.shutdown()
        try store.close()
        logger.notice("tokenbrokerd stopped")
    }
}
