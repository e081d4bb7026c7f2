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
    /// Connections refused over `maxConnections` since the last warning, and when that was.
    private let refusals = NIOLockedValueBox<(count: Int, lastWarning: ContinuousClock.Instant?)>((0, nil))

    public init(
        source: SocketSource, engine: BrokerEngine, policy: AccessPolicy, limits: ServerLimits = ServerLimits(),
        threads: Int = 1, logger: Logger, metrics: (@Sendable () -> [UInt8])? = nil
    ) {
        self.source = source
        self.router = Router(engine: engine, policy: policy, logger: logger, metrics: metrics)
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
        let refusals = self.refusals
        let logger = self.logger
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 512)
            // A client that shuts down its writing side after a request still gets the answer.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let id = ObjectIdentifier(channel)
                    let admitted = channels.withLockedValue { open in
                        guard open.count < limits.maxConnections else { return false }
                        open[id] = channel
                        return true
                    }
                    guard admitted else {
                        Self.noteRefusal(refusals, limit: limits.maxConnections, logger: logger)
                        try channel.pipeline.syncOperations.addHandler(RefuseConnectionHandler(limit: limits.maxConnections))
                        return
                    }
                    channel.closeFuture.whenComplete { _ in _ = channels.withLockedValue { $0.removeValue(forKey: id) } }
                    try channel.pipeline.syncOperations.addBrokerHandlers(router: router, limits: limits)
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
        var metadata: Logger.Metadata = ["broker.socket": "\(sourceDescription)", "broker.max_connections": "\(limits.maxConnections)"]
        if let files = Self.fileLimit() {
            metadata["broker.file_limit"] = "\(files.soft)"
            // Each connection holds a descriptor; the store, the journal and the HTTPS client need some too.
            if UInt64(limits.maxConnections) + Self.reservedDescriptors > files.soft {
                logger.warning(
                    "server.max_connections is above what the descriptor limit allows; accepting will pause when descriptors run out",
                    metadata: ["broker.max_connections": "\(limits.maxConnections)", "broker.file_limit": "\(files.soft)"])
            }
        }
        logger.info("listening", metadata: metadata)
    }

    /// Descriptors kept for other uses than connections when comparing `maxConnections` with the
    /// process's limit.
    static let reservedDescriptors: UInt64 = 128

    /// The process's descriptor limit (RLIMIT_NOFILE).
    public static func fileLimit() -> (soft: UInt64, hard: UInt64)? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Raises the soft descriptor limit to the hard one (capped by `fs.nr_open`), so that
    /// `maxConnections` clients can be held: the soft limit is often 1024, the hard one far more
    /// (systemd gives services 1024:524288). Call once at start, before serving. Returns the limit
    /// now in force. Nothing here uses select(2), so descriptors above 1024 are safe.
    @discardableResult
    public static func raiseFileLimit() -> (soft: UInt64, hard: UInt64)? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        var target = limit.rlim_max
        if let text = try? String(contentsOfFile: "/proc/sys/fs/nr_open", encoding: .utf8),
            let open = rlim_t(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
            target = min(target, open)
        }
        if limit.rlim_cur < target {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Logs refusals over the connection limit at most every ten seconds, with how many there were.
    static func noteRefusal(
        _ refusals: NIOLockedValueBox<(count: Int, lastWarning: ContinuousClock.Instant?)>, limit: Int, logger: Logger
    ) {
        let now = ContinuousClock.now
        let report: Int? = refusals.withLockedValue { state in
            state.count += 1
            if let last = state.lastWarning, now - last < .seconds(10) { return nil }
            defer { state = (0, now) }
            return state.count
        }
        if let report {
            logger.warning(
                "connection refused: server.max_connections reached",
                metadata: ["broker.event": "connection_refused", "broker.max_connections": "\(limit)", "broker.refused": "\(report)"])
        }
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

/// A connection over `maxConnections`: answered 503 at once and closed, without reading it. The
/// client sees a clear `temporarily_unavailable` instead of a hang, and the daemon keeps nothing
/// for it.
final class RefuseConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limit: Int

    init(limit: Int) { self.limit = limit }

    func channelActive(context: ChannelHandlerContext) {
        let body = APIResponse.error(
            BrokerError(.temporarilyUnavailable, "the daemon is serving \(limit) connections, its limit", hint: "try again shortly")
        ).body
        var head = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        head += "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        var buffer = context.channel.allocator.buffer(capacity: head.utf8.count + body.count)
        buffer.writeString(head)
        buffer.writeBytes(body)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
