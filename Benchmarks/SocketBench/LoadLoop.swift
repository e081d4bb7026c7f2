import CEpoll

#if canImport(Glibc)
    import Glibc
#endif

/// Monotonic nanoseconds (CLOCK_MONOTONIC).
@inline(__always) func monoNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// What every worker shares: the socket, the request bytes and the mode. The window a worker
/// measures is given to each `run`.
struct LoadPlan: Sendable {
    var socketPath: String
    /// The whole request, head and (empty) body, sent as one write.
    var request: [UInt8]
    /// A new connection for each request (the request then says `Connection: close`).
    var newConnection: Bool
    /// The status that counts as a success.
    var expectedStatus: Int
    /// Room for latencies, per worker, so the array is sized once.
    var expectedPerWorker: Int
}

/// What one worker (one thread, one epoll instance) measured.
struct WorkerResult: Sendable {
    var ok = 0
    /// Complete responses with another status.
    var bad = 0
    /// Connections that failed or closed before a complete response (each one is replaced).
    var errors = 0
    /// connect() found the listen backlog full and was tried again.
    var connectRetries = 0
    var warmup = 0
    /// Latency of every measured response, in nanoseconds (saturated at UInt32.max, 4.29 s).
    var latencies: [UInt32] = []
    var statuses: [Int: Int] = [:]
    var firstError: String?
    var firstBadResponse: String?
    var bodyBytes = 0
    /// Nanoseconds this worker spent measuring (the sum of its windows).
    var measuredNanos: UInt64 = 0
}

/// A closed-loop HTTP/1.1 client on one thread: plain epoll, one request in flight per
/// connection, the next one sent as soon as the previous response is complete. The per-request
/// cost is one send(), usually one recv() and a short scan of the response head (plus socket(),
/// connect(), epoll_ctl() and close() with a new connection per request), so that the server,
/// not this loop, is what is measured.
///
/// `run` can be called again with a later window: keep-alive connections stay open between
/// calls, so two workers on two servers can take turns in short slices (`load --versus`).
final class LoadWorker {
    private let plan: LoadPlan
    private let count: Int
    private let bufferSize = 64 * 1024
    private let buffers: UnsafeMutablePointer<UInt8>
    private var fds: [Int32]
    private var filled: [Int]
    private var headerEnd: [Int]
    private var bodyLength: [Int]
    private var status: [Int]
    private var sentAt: [UInt64]
    /// A request is in flight on this connection.
    private var inFlight: [Bool]
    /// The current window: responses that complete in `[windowStart, windowEnd)` are counted,
    /// earlier ones are warm-up, and none is sent from `windowEnd` on.
    private var windowStart: UInt64 = 0
    private var windowEnd: UInt64 = 0
    private let epoll: Int32
    private var address = sockaddr_un()
    private var result = WorkerResult()
    /// Connections that failed and wait to be opened again, after the current batch of events.
    private var pending: [Int] = []

    init(plan: LoadPlan, connections: Int) {
        self.plan = plan
        self.count = connections
        buffers = .allocate(capacity: connections * bufferSize)
        fds = Array(repeating: -1, count: connections)
        filled = Array(repeating: 0, count: connections)
        headerEnd = Array(repeating: -1, count: connections)
        bodyLength = Array(repeating: -1, count: connections)
        status = Array(repeating: 0, count: connections)
        sentAt = Array(repeating: 0, count: connections)
        inFlight = Array(repeating: false, count: connections)
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(plan.socketPath.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
            raw[min(bytes.count, raw.count - 1)] = 0
        }
        result.latencies.reserveCapacity(plan.expectedPerWorker)
    }

    deinit {
        buffers.deallocate()
        close(epoll)
    }

    /// The results so far, over every window run.
    var results: WorkerResult { result }

    /// Sends on every connection until `until`, counting what completes from `from` on; then
    /// waits (up to a second, uncounted) for the requests still in flight, so that the server is
    /// idle when this returns. Keep-alive connections stay open for the next call (`closeAll`).
    func run(from: UInt64, until: UInt64) {
        windowStart = from
        windowEnd = until
        let begun = monoNanos()
        if until > max(begun, from) { result.measuredNanos += until - max(begun, from) }
        if begun < until { for i in 0..<count where !inFlight[i] { connectAndSend(i) } }
        let maxEvents = max(count, 1)
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: maxEvents)
        defer { events.deallocate() }
        let drainEnd = until + 1_000_000_000
        while true {
            let now = monoNanos()
            if now >= drainEnd || (now >= until && !inFlight.contains(true)) { break }
            let deadline = now < until ? until : drainEnd
            let timeout = pending.isEmpty ? Int32(min(100, (deadline - now) / 1_000_000 + 1)) : 1
            let n = epoll_wait(epoll, events, Int32(maxEvents), timeout)
            if n < 0 {
                if errno == EINTR { continue }
                fail(nil, "epoll_wait: \(String(cString: strerror(errno)))")
                break
            }
            for k in 0..<Int(n) {
                let index = Int(events[k].data.u64)
                readable(index)
            }
            if !pending.isEmpty {
                let again = pending
                pending.removeAll(keepingCapacity: true)
                if result.errors > 10_000 { usleep(1000) } // a dead server: do not spin
                for i in again where monoNanos() < windowEnd { connectAndSend(i) }
            }
        }
        for i in 0..<count where fds[i] >= 0 && inFlight[i] {
            // A request still in flight after the drain: its connection cannot be reused.
            close(fds[i])
            fds[i] = -1
            inFlight[i] = false
        }
    }

    /// Closes every connection left open by `run`.
    func closeAll() {
        for i in 0..<count where fds[i] >= 0 {
            close(fds[i])
            fds[i] = -1
            inFlight[i] = false
        }
    }

    /// Opens the connection if it has none, then sends the request.
    private func connectAndSend(_ i: Int) {
        // With a new connection per request, the latency includes socket() and connect().
        let begun = monoNanos()
        if fds[i] < 0 {
            var attempts = 0
            while true {
                let fd = socket(
                    AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                    0)
                if fd < 0 {
                    fail(nil, "socket: \(String(cString: strerror(errno)))")
                    return
                }
                let rc = withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
                if rc == 0 {
                    fds[i] = fd
                    break
                }
                let error = errno
                close(fd)
                // A full listen backlog: the server is behind on accept(). Try again shortly.
                if error == EAGAIN && attempts < 10_000 {
                    attempts += 1
                    result.connectRetries += 1
                    usleep(50)
                    continue
                }
                fail(nil, "connect: \(String(cString: strerror(error)))")
                if monoNanos() >= windowEnd { return }
                usleep(1000)
                attempts = 0
            }
            var event = epoll_event()
            event.events = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
            event.data.u64 = UInt64(i)
            epoll_ctl(epoll, EPOLL_CTL_ADD, fds[i], &event)
        }
        filled[i] = 0
        headerEnd[i] = -1
        bodyLength[i] = -1
        sentAt[i] = begun
        inFlight[i] = true
        let sent = plan.request.withUnsafeBytes { send(fds[i], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if sent != plan.request.count {
            // A short write of a request this small does not happen on a healthy socket.
            fail(i, sent < 0 ? "send: \(String(cString: strerror(errno)))" : "short send")
            return
        }
    }

    /// Reads what arrived; completes the response when it is whole.
    private func readable(_ i: Int) {
        let fd = fds[i]
        guard fd >= 0 else { return }
        let base = buffers + i * bufferSize
        let room = bufferSize - filled[i]
        guard room > 0 else {
            fail(i, "response larger than \(bufferSize) bytes")
            return
        }
        let r = recv(fd, base + filled[i], room, 0)
        if r < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            fail(i, "recv: \(String(cString: strerror(errno)))")
            return
        }
        if r == 0 {
            fail(i, "the server closed the connection before a complete response")
            return
        }
        let before = filled[i]
        filled[i] += r
        if headerEnd[i] < 0 {
            // Look for the blank line, starting a little before the new bytes.
            var j = max(0, before - 3)
            let end = filled[i] - 3
            while j < end {
                if base[j] == 13 && base[j + 1] == 10 && base[j + 2] == 13 && base[j + 3] == 10 {
                    headerEnd[i] = j + 4
                    break
                }
                j += 1
            }
            if headerEnd[i] < 0 { return }
            guard parseHead(base, headerEnd[i], i) else {
                fail(
                    i,
                    "malformed response head: "
                        + String(decoding: UnsafeBufferPointer(start: base, count: min(200, filled[i])), as: UTF8.self))
                return
            }
        }
        if filled[i] < headerEnd[i] + bodyLength[i] { return }
        complete(i)
    }

    /// Status code and Content-Length from the response head.
    private func parseHead(_ base: UnsafeMutablePointer<UInt8>, _ end: Int, _ i: Int) -> Bool {
        // "HTTP/1.1 200 "
        guard end >= 12, base[8] == 32 else { return false }
        status[i] = Int(base[9] &- 48) * 100 + Int(base[10] &- 48) * 10 + Int(base[11] &- 48)
        // Header lines: find "content-length:" case-insensitively at a line start.
        let name: [UInt8] = Array("content-length:".utf8)
        var line = 0
        while line < end {
            // Advance to the next line start.
            while line < end && base[line] != 10 { line += 1 }
            line += 1
            if line + name.count >= end { break }
            var match = true
            for (k, c) in name.enumerated() {
                var b = base[line + k]
                if b >= 65 && b <= 90 { b += 32 }
                if b != c {
                    match = false
                    break
                }
            }
            if match {
                var p = line + name.count
                while p < end && base[p] == 32 { p += 1 }
                var value = 0
                while p < end && base[p] >= 48 && base[p] <= 57 {
                    value = value * 10 + Int(base[p] - 48)
                    p += 1
                }
                bodyLength[i] = value
                return true
            }
        }
        return false
    }

    private func complete(_ i: Int) {
        let finishedAt = monoNanos()
        inFlight[i] = false
        if finishedAt < windowStart {
            result.warmup += 1
        } else if finishedAt < windowEnd {
            let latency = finishedAt - sentAt[i]
            result.latencies.append(latency > UInt64(UInt32.max) ? UInt32.max : UInt32(latency))
            if status[i] == plan.expectedStatus {
                result.ok += 1
                result.bodyBytes = bodyLength[i]
            } else {
                result.bad += 1
                result.statuses[status[i], default: 0] += 1
                if result.firstBadResponse == nil {
                    let base = buffers + i * bufferSize
                    result.firstBadResponse = String(
                        decoding: UnsafeBufferPointer(start: base, count: min(400, filled[i])), as: UTF8.self)
                }
            }
        }
        if plan.newConnection {
            close(fds[i]) // also removes it from the epoll set
            fds[i] = -1
        }
        if finishedAt >= windowEnd { return }
        connectAndSend(i)
    }

    /// Counts a failure; a failed connection is closed and replaced.
    private func fail(_ i: Int?, _ message: String) {
        let now = monoNanos()
        if now >= windowStart && now < windowEnd { result.errors += 1 }
        if result.firstError == nil { result.firstError = message }
        guard let i else { return }
        inFlight[i] = false
        if fds[i] >= 0 {
            close(fds[i])
            fds[i] = -1
        }
        pending.append(i)
    }
}
