import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// A running simulator: the HTTPS listener with every identity endpoint, and optionally the
/// control listener and the notification-server (MSNP24 login) TCP listener.
public final class LiveSimServer: Sendable {
    public let configuration: LiveSimConfiguration
    /// The port the HTTPS listener is bound to.
    public let port: Int
    /// The port of the control listener, when it is on.
    public let controlPort: Int?
    /// The port of the notification-server TCP listener, when it is on.
    public let nsPort: Int?
    /// The port of the SkyLogin login-server TCP listener, when it is on.
    public let skyloginPort: Int?
    /// The login server's public keys in the realm's `skylogin_keys` format,
    /// `{"session_modulus": "<hex>", "signers": {"1": "<hex>"}}` (e = 65537), when it is on.
    public let skyloginKeysJSON: String?
    /// The CA that signed the server certificate (PEM); nil when PEM files were given.
    public let caPEM: String?
    let state: SimState
    private let group: MultiThreadedEventLoopGroup
    private let channels: [any Channel]

    private init(
        configuration: LiveSimConfiguration, port: Int, controlPort: Int?, nsPort: Int?, skylogin: (Int, String)?,
        caPEM: String?, state: SimState,
        group: MultiThreadedEventLoopGroup, channels: [any Channel]
    ) {
        self.configuration = configuration
        self.port = port
        self.controlPort = controlPort
        self.nsPort = nsPort
        self.skyloginPort = skylogin?.0
        self.skyloginKeysJSON = skylogin?.1
        self.caPEM = caPEM
        self.state = state
        self.group = group
        self.channels = channels
    }

    /// `https://HOST:PORT`, with the listen address as host.
    public var baseURL: String { "https://\(Self.urlHost(configuration.listenHost)):\(port)" }

    /// `http://HOST:PORT` of the control API, when it is on.
    public var controlURL: String? {
        controlPort.map { "http://\(Self.urlHost(configuration.controlHost ?? "127.0.0.1")):\($0)" }
    }

    /// `HOST:PORT` of the notification-server listener, when it is on.
    public var nsAddress: String? {
        nsPort.map { "\(Self.urlHost(configuration.nsHost ?? "127.0.0.1")):\($0)" }
    }

    /// `HOST:PORT` of the SkyLogin listener, when it is on.
    public var skyloginAddress: String? {
        skyloginPort.map { "\(Self.urlHost(configuration.skyloginHost ?? "127.0.0.1")):\($0)" }
    }

    static func urlHost(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    /// Starts the listeners and returns once they accept connections.
    public static func start(_ configuration: LiveSimConfiguration, logger: Logger? = nil) async throws -> LiveSimServer
    {
        let tlsContext: NIOSSLContext
        var caPEM: String?
        if let certFile = configuration.certificatePEMFile, let keyFile = configuration.privateKeyPEMFile {
            let chain = try NIOSSLCertificate.fromPEMFile(certFile).map { NIOSSLCertificateSource.certificate($0) }
            let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
            tlsContext = try NIOSSLContext(
                configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
        } else {
            let tls = try GeneratedTLS.generate(
                listenHost: configuration.listenHost, extraNames: configuration.subjectAlternativeNames)
            let cert = try NIOSSLCertificate(bytes: Array(tls.certificatePEM.utf8), format: .pem)
            let key = try NIOSSLPrivateKey(bytes: Array(tls.privateKeyPEM.utf8), format: .pem)
            tlsContext = try NIOSSLContext(
                configuration: .makeServerConfiguration(
                    certificateChain: [.certificate(cert)], privateKey: .privateKey(key)))
            caPEM = tls.caPEM
        }

        var world = SimWorld(
            settings: SimSettings(
                tokenLifetime: configuration.tokenLifetime,
                lifetimes: Dictionary(
                    uniqueKeysWithValues: configuration.lifetimes.map { ($0.key.rawValue, $0.value) }),
                rotation: configuration.rotation, rotationGrace: configuration.rotationGrace,
                pageStyle: configuration.pageStyle, rstNumbering: configuration.rstNumbering,
                passportURLsHeader: configuration.passportURLsHeader))
        for spec in configuration.accounts { _ = world.addAccount(spec) }
        let skyloginKeys = try configuration.skyloginHost.map { _ in try SkyLoginKeys.generate() }
        world.skylogin = skyloginKeys
        let state = SimState(world)
        let requestLogger = configuration.logRequests ? logger : nil

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        var channels: [any Channel] = []
        do {
            let main = try await SimListener.bind(
                group: group, host: configuration.listenHost, port: configuration.listenPort, tls: tlsContext,
                app: IdentityProvider(state: state, logger: requestLogger))
            channels.append(main)
            var controlPort: Int?
            if let controlHost = configuration.controlHost {
                let control = try await SimListener.bind(
                    group: group, host: controlHost, port: configuration.controlPort, tls: nil,
                    app: ControlAPI(state: state, logger: requestLogger))
                channels.append(control)
                controlPort = control.localAddress?.port
            }
            var nsPort: Int?
            if let nsHost = configuration.nsHost {
                let ns = try await NSListener.bind(
                    group: group, host: nsHost, port: configuration.nsPort, state: state, logger: requestLogger)
                channels.append(ns)
                nsPort = ns.localAddress?.port
            }
            var skylogin: (Int, String)?
            if let skyloginHost = configuration.skyloginHost, let skyloginKeys {
                let listener = try await SkyLoginListener.bind(
                    group: group, host: skyloginHost, port: configuration.skyloginPort, state: state,
                    keys: skyloginKeys,
                    logger: requestLogger, timeout: configuration.skyloginTimeout)
                channels.append(listener)
                skylogin = (listener.localAddress?.port ?? 0, skyloginKeys.publicJSON)
            }
            return LiveSimServer(
                configuration: configuration, port: main.localAddress?.port ?? 0, controlPort: controlPort,
                nsPort: nsPort, skylogin: skylogin,
                caPEM: caPEM,
                state: state, group: group, channels: channels)
        } catch {
            for channel in channels { try? await channel.close() }
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Blocks until the listeners close.
    public func wait() async throws {
        for channel in channels { try await channel.closeFuture.get() }
    }

    /// Starts closing the listeners without waiting; `wait()` then returns.
    public func close() {
        for channel in channels { channel.close(promise: nil) }
    }

    public func shutdown() async throws {
        for channel in channels { try? await channel.close() }
        try await group.shutdownGracefully()
    }
}
