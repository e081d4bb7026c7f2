import BrokerCore
import CShims
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Where the socket comes from: a path to bind, or a descriptor handed over by systemd.
package enum SocketSource: Sendable {
    case path(String, mode: mode_t, group: gid_t?)
    case inherited(CInt)
}

/// HTTP/1.1 over the Unix socket, as a service: binds (without a window in which others could
/// connect), serves on its own event loop (`ServerLoop`) until graceful shutdown, then stops
/// accepting, lets in-flight requests finish, ends event streams and closes idle connections.
package final class SocketServer: Service, Sendable {
    private let source: SocketSource
    private let router: Router
    private let limits: ServerLimits
    private let logger: Logger
    private let loop = NIOLockedValueBox<ServerLoop?>(nil)
    /// Takes the service's events to the loop, for the event streams.
    private let events = NIOLockedValueBox<Task<Void, Never>?>(nil)

    package init(
        source: SocketSource, service: any CredentialService, policy: AccessPolicy,
        limits: ServerLimits = ServerLimits(),
        logger: Logger, metrics: (@Sendable () -> [UInt8])? = nil
    ) {
        self.source = source
        self.router = Router(service: service, policy: policy, logger: logger, metrics: metrics)
        self.limits = limits
        self.logger = logger
    }

    /// Applies a reloaded access policy to the next request.
    package func update(policy: AccessPolicy) { router.policy = policy }

    /// Takes up a changed log level: the level of the logger the server was given is looked at
    /// here, not on every read (the debug line each read writes).
    package func followLogLevel() { router.followLogLevel() }

    /// Runs `work` on the server's event loop thread (health checks: a task round trip). Does
    /// nothing before `bind()`.
    package func execute(_ work: @escaping @Sendable () -> Void) {
        loop.withLockedValue { $0 }?.post(.execute(work))
    }

    /// How many connections the loop answered whole right after accepting them
    /// (`ServerLoop.answerWhole`), read on its thread. For tests.
    func wholeAnswers() async -> Int {
        guard let serverLoop = loop.withLockedValue({ $0 }) else { return 0 }
        return await withCheckedContinuation { continuation in
            serverLoop.post(.execute { continuation.resume(returning: serverLoop.wholeAnswers) })
        }
    }

    /// Binds (or adopts) the socket and starts serving; call before `run()` so that start-up can
    /// report readiness.
    package func bind() async throws {
        guard loop.withLockedValue({ $0 }) == nil else { return }
        let fd: Int32
        switch source {
        case .inherited(let inherited):
            fd = inherited
            let flags = fcntl(fd, F_GETFL)
            guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else {
                throw BrokerError(.internalError, "cannot use the passed socket: \(ServerLoop.errorText())")
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        case .path(let path, let mode, let group):
            if Self.isListening(path) {
                throw BrokerError(.conflict, "another process is already serving \(path)")
            }
            fd = try Self.listen(path: path)
            if let group, chown(path, uid_t.max, group) != 0 {
                close(fd)
                throw BrokerError(.internalError, "cannot set the socket's group: \(String(cString: strerror(errno)))")
            }
            if chmod(path, mode) != 0 {
                close(fd)
                throw BrokerError(.internalError, "cannot set the socket's mode: \(String(cString: strerror(errno)))")
            }
        }
        let serverLoop: ServerLoop
        do {
            serverLoop = try ServerLoop(listener: fd, router: router, limits: limits, logger: logger)
        } catch {
            close(fd)
            throw error
        }
        loop.withLockedValue { $0 = serverLoop }
        serverLoop.start()
        let stream = router.service.events()
        events.withLockedValue {
            $0 = Task {
                for await event in stream { serverLoop.post(.event(event)) }
            }
        }
        var metadata: Logger.Metadata = [
            "broker.socket": "\(sourceDescription)", "broker.max_connections": "\(limits.maxConnections)",
        ]
        if let files = Self.fileLimit() {
            metadata["broker.file_limit"] = "\(files.soft)"
            // Each connection holds a descriptor; the store, the journal and the HTTPS client need some too.
            if UInt64(limits.maxConnections) + Self.reservedDescriptors > files.soft {
                logger.warning(
                    "server.max_connections is above what the descriptor limit allows; accepting will pause when descriptors run out",
                    metadata: [
                        "broker.max_connections": "\(limits.maxConnections)", "broker.file_limit": "\(files.soft)",
                    ])
            }
        }
        logger.info("listening", metadata: metadata)
    }

    /// A listening socket at `path`, created 0600 under a strict umask and opened up to the
    /// configured mode and group afterwards: no moment exists in which another user could connect.
    /// A stale file from a crash is replaced.
    static func listen(path: String) throws -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw BrokerError(.badRequest, "the socket path is too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BrokerError(.internalError, "cannot create the socket: \(ServerLoop.errorText())") }
        var status = stat()
        if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
        let old = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        umask(old)
        guard bound == 0, Glibc.listen(fd, 512) == 0 else {
            let text = ServerLoop.errorText()
            close(fd)
            throw BrokerError(.internalError, "cannot listen on \(path): \(text)")
        }
        return fd
    }

    /// Descriptors kept for other uses than connections when comparing `maxConnections` with the
    /// process's limit.
    static let reservedDescriptors: UInt64 = 128

    /// The process's descriptor limit (RLIMIT_NOFILE).
    package static func fileLimit() -> (soft: UInt64, hard: UInt64)? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        return (UInt64(limit.rlim_cur), UInt64(limit.rlim_max))
    }

    /// Raises the soft descriptor limit to the hard one (capped by `fs.nr_open`), so that
    /// `maxConnections` clients can be held: the soft limit is often 1024, the hard one far more
    /// (systemd gives services 1024:524288). Call once at start, before serving. Returns the limit
    /// now in force. Nothing here uses select(2), so descriptors above 1024 are safe.
    @discardableResult
    package static func raiseFileLimit() -> (soft: UInt64, hard: UInt64)? {
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
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
            }
        }
    }

    private var sourceDescription: String {
        switch source {
        case .path(let path, _, _): path
        case .inherited(let fd): "fd \(fd)"
        }
    }

    package func run() async throws {
        if loop.withLockedValue({ $0 }) == nil { try await bind() }
        guard let serverLoop = loop.withLockedValue({ $0 }) else { return }
        // Stop accepting, let open connections finish what they are doing (up to 5 s), close.
        await withTaskCancellationOrGracefulShutdownHandler {
            await serverLoop.finish()
        } onCancelOrGracefulShutdown: {
            serverLoop.post(.quiesce(grace: .seconds(5)))
        }
        events.withLockedValue { $0 }?.cancel()
    }
}
