#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A connected AF_UNIX stream socket with blocking I/O bounded by one deadline; closed when
/// it goes out of scope. Every failure is a `BrokerClientError`.
struct UnixSocket: ~Copyable {
    let fd: Int32
    let path: String
    private let deadline: ContinuousClock.Instant

    /// Connects to `path`, waiting at most until `deadline`.
    init(connectingTo path: String, deadline: ContinuousClock.Instant) throws(BrokerClientError) {
        self.fd = try UnixSocket.connected(to: path, deadline: deadline)
        self.path = path
        self.deadline = deadline
    }

    deinit { _ = closeFD(fd) }

    private static func connected(
        to path: String, deadline: ContinuousClock.Instant
    ) throws(BrokerClientError) -> Int32 {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty else {
            throw .unreachable(path: path, reason: "the socket path is empty")
        }
        guard pathBytes.count < capacity else {
            throw .unreachable(path: path, reason: "the socket path is longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }

        #if canImport(Darwin)
            let fd = socket(AF_UNIX, SOCK_STREAM, 0)
        #else
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        #endif
        guard fd >= 0 else {
            throw .unreachable(path: path, reason: "socket(): \(errorText(errno))")
        }

        // connect() on a Unix socket blocks only while the listener's backlog is full;
        // SO_SNDTIMEO bounds that wait (and every send).
        var remaining = timeoutValue(until: deadline)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &remaining, socklen_t(MemoryLayout<timeval>.size))
        #if canImport(Darwin)
            var one: Int32 = 1
            _ = setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif

        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        while true {
            let result = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
            }
            if result == 0 { return fd }
            let error = errno
            if error == EINTR { continue }
            if error == EISCONN { return fd }
            _ = closeFD(fd)
            switch error {
            case EAGAIN, EINPROGRESS, ETIMEDOUT:
                throw .unreachable(path: path, reason: "the daemon accepts no connection (timed out)")
            case ENOENT:
                throw .unreachable(path: path, reason: "no such socket")
            case ECONNREFUSED:
                throw .unreachable(path: path, reason: "connection refused (no daemon listens there)")
            default:
                throw .unreachable(path: path, reason: errorText(error))
            }
        }
    }

    /// Sends every byte. Returns false when the peer closed its end (EPIPE, ECONNRESET):
    /// the daemon may still have answered (e.g. 413 before reading the whole body).
    func sendAll(_ bytes: [UInt8]) throws(BrokerClientError) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, raw.count - offset, UnixSocket.sendFlags)
            }
            if sent >= 0 {
                offset += sent
                continue
            }
            let error = errno
            switch error {
            case EINTR: continue
            case EPIPE, ECONNRESET: return false
            case EAGAIN, EWOULDBLOCK:
                throw .unreachable(path: path, reason: "timed out sending the request")
            default:
                throw .protocolError("sending the request failed: \(UnixSocket.errorText(error))")
            }
        }
        return true
    }

    /// Reads what is there, waiting until the deadline. An empty result means EOF.
    func receive(into buffer: inout [UInt8], maximum: Int = 65536) throws(BrokerClientError) -> Int {
        try receive(into: &buffer, maximum: maximum, until: deadline)
    }

    /// Reads what is there, waiting until `deadline` (a stream's reads each have their own).
    func receive(
        into buffer: inout [UInt8], maximum: Int = 65536, until deadline: ContinuousClock.Instant
    ) throws(BrokerClientError) -> Int {
        while true {
            let waitMilliseconds = UnixSocket.milliseconds(until: deadline)
            guard waitMilliseconds > 0 else { throw timedOut() }
            var pollFD = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollFD, 1, Int32(clamping: waitMilliseconds))
            if ready < 0 {
                if errno == EINTR { continue }
                throw .protocolError("poll(): \(UnixSocket.errorText(errno))")
            }
            if ready == 0 { throw timedOut() }

            let (count, error) = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: maximum) {
                scratch -> (Int, Int32) in
                let count = read(fd, scratch.baseAddress!, maximum)
                guard count > 0 else { return (count, errno) }
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: scratch[..<count]))
                return (count, 0)
            }
            if count >= 0 { return count }
            switch error {
            case EINTR, EAGAIN: continue
            case ECONNRESET: return 0
            default: throw .protocolError("reading the answer failed: \(UnixSocket.errorText(error))")
            }
        }
    }

    private func timedOut() -> BrokerClientError {
        .unreachable(path: path, reason: "no answer in time (the daemon may be stuck)")
    }

    // MARK: - Helpers

    #if canImport(Darwin)
        private static let sendFlags: Int32 = 0
    #else
        private static let sendFlags = Int32(MSG_NOSIGNAL)
    #endif

    static func errorText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }

    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int64 {
        let left = ContinuousClock.now.duration(to: deadline)
        let (seconds, attoseconds) = left.components
        if seconds < 0 || (seconds == 0 && attoseconds <= 0) { return 0 }
        // Round up so a wait never ends a hair before the deadline.
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }

    static func timeoutValue(until deadline: ContinuousClock.Instant) -> timeval {
        let milliseconds = max(1, milliseconds(until: deadline))
        #if canImport(Darwin)
            return Darwin.timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int32(milliseconds % 1000) * 1000)
        #else
            return Glibc.timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        #endif
    }
}

private func closeFD(_ fd: Int32) -> Int32 {
    #if canImport(Darwin)
        Darwin.close(fd)
    #else
        Glibc.close(fd)
    #endif
}
