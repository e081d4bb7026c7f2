import BrokerCore
import BrokerEngine
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Where the socket comes from: a path to bind, or a descriptor handed over by systemd.
public enum SocketSource: Sendable {
    case path(String, mode: mode_t, group: gid_t?)
    case inherited(CInt)
}

/// HTTP/1.1 over the Unix socket, as a service: binds (without a window in which others could
/// connect), serves until graceful shutdown, then stops accepting, lets in-flight requests finish
/// and closes idle connections.
public final class SocketServer: Service, Sendable {
    private let source: SocketSource
    private let router: Router
    private let limits: ServerLimits
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let channels = NIOLockedValueBox<[ObjectIdentifier: any Channel]>([:])
    private let ready = NIOLockedValueBox<(any Channel)?>(nil)

    public init(
        source: SocketSource, engine: BrokerEngine, policy: AccessPolicy, limits: ServerLimits = ServerLimits(),
        threads: Int = 1, logger: Logger
    ) {
        self.source = source
        self.router = Router(engine: engine, policy: policy, logger: logger)
        self.limits = limits
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    }

    /// Applies a reloaded access policy to the next request.
    public func update(policy: AccessPolicy) { router.policy = policy }

    /// The event loops that serve connections, for health checks (a task round trip).
    public var eventLoopGroup: any EventLoopGroup { group }

    /// Binds (or adopts) the socket; call before `run()` so that start-up can report readiness.
    public func bind() async throws {
        let limits = self.limits
        let router = self.router
        let channels = self.channels
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = ObjectIdentifier(channel)
                    channels.withLockedValue { $0[id] = channel }
                    channel.closeFuture.whenComplete { _ in _ = channels.withLockedValue { $0.removeValue(forKey: id) } }
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
                    try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
                    try sync.addHandler(BrokerHTTPHandler(router: router, limits: limits))
                }
            }
        let channel: any Channel
        switch source {
        case .inherited(let fd):
            channel = try await bootstrap.withBoundSocket(fd).get()
        case .path(let path, let mode, let group):
            if Self.isListening(path) {
                throw BrokerError(.conflict, "another process is already serving \(path)")
            }
            // Created 0600 under a strict umask, then opened up to the configured mode and group:
            // no moment exists in which another user could connect.
            let old = umask(0o177)
            defer { umask(old) }
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
            if let group, chown(path, uid_t.max, group) != 0 {
                throw BrokerError(.internalError, "cannot set the socket's group: \(String(cString: strerror(errno)))")
            }
            if chmod(path, mode) != 0 {
                throw BrokerError(.internalError, "cannot set the socket's mode: \(String(cString: strerror(errno)))")
            }
        }
        ready.withLockedValue { $0 = channel }
        logger.info("listening", metadata: ["broker.socket": "\(sourceDescription)"])
    }

    /// Whether something accepts connections on the path (a stale file from a crash does not).
    static func isListening(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    private var sourceDescription: String {
        switch source {
        case .path(let path, _, _): path
        case .inherited(let fd): "fd \(fd)"
        }
    }

    public func run() async throws {
        if ready.withLockedValue({ $0 }) == nil { try await bind() }
        guard let server = ready.withLockedValue({ $0 }) else { return }
        try await withGracefulShutdownHandler {
            try await server.closeFuture.get()
        } onGracefulShutdown: {
            server.close(promise: nil)
        }
        // Stop accepting is done; ask open connections to finish what they are doing and close.
        for channel in channels.withLockedValue({ Array($0.values) }) {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        let deadline = ContinuousClock.now + .seconds(5)
        while !channels.withLockedValue({ $0.isEmpty }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in channels.withLockedValue({ Array($0.values) }) { channel.close(promise: nil) }
        try await group.shutdownGracefully()
    }
}
