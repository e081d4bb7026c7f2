import BrokerAPI
import Foundation
import LiveSim
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Hostile clients against a real daemon: thousands of idle connections, slowloris, oversized
/// and random input, half-closed sockets, and the connection limit.
@Suite("Hostile clients", .serialized)
struct HostileClientTests {
    @Test(
        "10,000 idle connections: each costs the daemon at most twice the memory docs/SECURITY.md states, and a new client's reads keep p99 within the calibrated bound"
    )
    func tenThousandIdleConnections() async throws {
        let connections = 10_000
        let limit = ensureFileLimit(atLeast: UInt64(connections) + 2048)
        try #require(
            limit >= UInt64(connections) + 512, "RLIMIT_NOFILE is \(limit); \(connections) connections need more")
        // The daemon inherits this limit; idle connections must outlive the test.
        try await withBroker(sim: { $0.tokenLifetime = 3600 }, server: ["idle_timeout = 600"]) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let pid = try #require(daemon.pid)
            let socketPath = daemon.socketPath
            let client = BrokerClient(socketPath: socketPath, timeout: .seconds(10))
            let daemonLimit = fileLimit(of: pid)
            print("hostile: daemon RLIMIT_NOFILE soft \(daemonLimit.map(String.init) ?? "?")")

            _ = try await offloaded { try readLatencies(client, count: 300) }
            let rssBefore = try #require(residentKilobytes(pid))
            let baseline = try await offloaded { try readLatencies(client, count: 1000) }

            // Less a few: the last reads' connections may still have been open.
            let baselineDescriptors = (openDescriptors(pid) ?? 0) - 16
            let opened = ContinuousClock.now
            let fds = await offloaded { openConnections(socketPath, count: connections) }
            defer { for fd in fds { close(fd) } }
            try #require(fds.count == connections, "opened only \(fds.count) connections")
            // Wait until the daemon has accepted every one. Its descriptors can be counted only by
            // root: the daemon makes itself non-dumpable, which makes its /proc/PID/fd root's.
            if openDescriptors(pid) == nil {
                print("skip: the daemon's descriptors can be read only as root (it is not dumpable): not counted")
                try await Task.sleep(for: .seconds(5))
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while let open = openDescriptors(pid), open < baselineDescriptors + connections,
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            let acceptTime = ContinuousClock.now - opened
            if let open = openDescriptors(pid) {
                try #require(
                    open >= baselineDescriptors + connections,
                    "the daemon holds \(open) descriptors, \(baselineDescriptors) before")
            }
            try await Task.sleep(for: .milliseconds(500))
            let rssIdle = try #require(residentKilobytes(pid))

            // The p99 bound is written for an idle machine and scaled by the measured slowdown
            // (see Calibration). A round over it is measured again, up to three rounds, only when
            // a new calibration finds the machine loaded at that moment (a slowdown over 1.5),
            // and the bound follows that measurement; every round is printed.
            var latencyBound = Calibration.margin(Self.idleReadP99)
            var rounds: [[Duration]] = []
            while true {
                rounds.append(try await offloaded { try readLatencies(client, count: 1000) })
                guard percentile(rounds.last!, 0.99) > latencyBound, rounds.count < 3 else { break }
                let now = Calibration.measure().slowdown
                guard now > 1.5 else { break }
                latencyBound = max(latencyBound, Self.idleReadP99 * now)
            }
            let loaded = rounds.last!
            let rssAfter = try #require(residentKilobytes(pid))
            let stillOpen = fds.filter { !peerClosed($0) }.count

            let growth = max(rssIdle, rssAfter) - rssBefore
            print(
                """
                hostile: \(connections) idle connections accepted in \(acceptTime); daemon RSS \(rssBefore) kB before, \
                \(rssIdle) kB with them open, \(rssAfter) kB after 1000 reads: growth \(growth) kB \
                (\(String(format: "%.2f", Double(growth) / 1024)) MB, \(growth * 1024 / connections) bytes per connection)
                hostile: token reads, a new connection each: without idle connections p50 \(ms(percentile(baseline, 0.5))) \
                p99 \(ms(percentile(baseline, 0.99))) max \(ms(baseline.max() ?? .zero)); \
                with \(connections) idle p50 \(ms(percentile(loaded, 0.5))) p99 \(ms(percentile(loaded, 0.99))) max \(ms(loaded.max() ?? .zero))\
                \(rounds.count > 1 ? " (round \(rounds.count); earlier p99 " + rounds.dropLast().map { ms(percentile($0, 0.99)) }.joined(separator: ", ") + ")" : "")
                hostile: \(stillOpen) of \(connections) idle connections still open
                """)
            let perConnection = growth * 1024 / connections
            let documented = try documentedBytesPerIdleConnection()
            #expect(
                perConnection <= 2 * documented,
                "\(perConnection) bytes per idle connection; docs/SECURITY.md states \(documented)")
            #expect(
                percentile(loaded, 0.99) <= latencyBound,
                "p99 \(ms(percentile(loaded, 0.99))) with \(connections) idle connections; bound \(ms(latencyBound))")
            #expect(stillOpen == connections)
            #expect(daemon.isRunning)

            for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
            let health = try await daemon.get("/v1/health")
            #expect(health.status == 200)
        }
    }

    /// The bound on the p99 of a token read, 10,000 idle connections open, on an idle machine
    /// (a debug build). Measured here: 0.4 to 1 ms on a quiet machine, about 4.3 ms on a busy one
    /// whose calibration said 1.5, while the same reads without the idle connections kept 0.5 ms.
    /// Scaled by `Calibration.slowdown`.
    static let idleReadP99: Duration = .milliseconds(4)

    @Test(
        "slowloris: a request dribbled a byte at a time is cut at request_timeout (each of two values, within 20%), one slower than idle_timeout at that, and others are served meanwhile"
    )
    func slowloris() async throws {
        // Two values, so that a cut that follows anything but request_timeout (idle_timeout, a
        // fixed constant, a default) misses one of the two windows. Their windows stay apart
        // even at the calibration's widest margin.
        for (index, timeout) in [Duration.milliseconds(1500), .seconds(4)].enumerated() {
            try await slowloris(requestTimeout: timeout, checkIdleTimeout: index == 0)
        }
    }

    func slowloris(requestTimeout: Duration, checkIdleTimeout: Bool) async throws {
        let seconds = Double(requestTimeout.components.seconds) + Double(requestTimeout.components.attoseconds) / 1e18
        try await withBroker(
            sim: { $0.tokenLifetime = 3600 }, server: ["idle_timeout = 1", "request_timeout = \(seconds)"]
        ) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let path = daemon.socketPath

            // 50 clients each send a header byte every 300 ms: under the idle timeout, so only the
            // request deadline can stop them. A 50th of them dribbles a body instead.
            async let dribblers = offloaded {
                dribble(path, clients: 50, every: .milliseconds(300), giveUpAfter: requestTimeout * 3 + .seconds(5))
            }
            // Meanwhile, reads are served.
            try await Task.sleep(for: .milliseconds(500))
            for _ in 0..<20 {
                #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
                try await Task.sleep(for: .milliseconds(50))
            }
            let results = await dribblers
            let cut = results.filter { $0.closedAfter != nil }
            let longest = cut.compactMap(\.closedAfter).max() ?? .zero
            let fastest = cut.compactMap(\.closedAfter).min() ?? .zero
            // ±20% of request_timeout; the upper side widened by the measured slowdown, since a
            // loaded machine can only make the cut late, never early.
            let earliest = requestTimeout * 0.8
            let latest = requestTimeout + Calibration.margin(requestTimeout * 0.2)
            print(
                "hostile: request_timeout \(requestTimeout): \(cut.count) of \(results.count) slowloris clients closed, after \(fastest) to \(longest) (window \(earliest) to \(latest)); bytes sent at most \(results.map(\.sent).max() ?? 0)"
            )
            #expect(cut.count == results.count, "\(results.count - cut.count) slowloris clients never cut")
            #expect(fastest >= earliest, "a slowloris client was cut after \(fastest), before \(earliest)")
            #expect(longest <= latest, "a slowloris client was cut after \(longest), after \(latest)")
            #expect(results.allSatisfy { $0.answer.isEmpty }, "a slowloris client got an answer")
            #expect(daemon.log.contains("request not received in time"))

            if checkIdleTimeout {
                // Slower than the idle timeout: closed by it, after about a second.
                let gap = await offloaded {
                    dribble(path, clients: 1, every: .milliseconds(1500), giveUpAfter: .seconds(10))
                }
                print(
                    "hostile: a client sending a byte every 1.5 s was closed after \(gap[0].closedAfter.map { "\($0)" } ?? "never")"
                )
                let closedAfter = gap[0].closedAfter ?? .seconds(99)
                #expect(
                    closedAfter >= .milliseconds(800)
                        && closedAfter <= .seconds(1) + Calibration.margin(.milliseconds(200)))
            }

            #expect(daemon.isRunning)
            #expect(try await daemon.get("/v1/health").status == 200)
        }
    }

    @Test("oversized heads and bodies, and random bytes: each is answered 4xx or closed; the daemon stays up")
    func oversizedAndRandom() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 3600 }, server: ["idle_timeout = 2", "request_timeout = 2"]) {
            sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let path = daemon.socketPath
            func exchange(_ text: String) async -> Exchange {
                await offloaded { halfClosedExchange(path, Array(text.utf8)) }
            }
            let cases: [(String, String, String)] = [
                (
                    "a 20 KB header",
                    "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n",
                    "431"
                ),
                (
                    "a 200 KB header, past the parser's own limit",
                    "GET /v1/health HTTP/1.1\r\nX-Big: \(String(repeating: "a", count: 200_000))\r\n\r\n", "431"
                ),
                (
                    "2,000 small headers",
                    "GET /v1/health HTTP/1.1\r\n" + (0..<2000).map { "X-\($0): v\r\n" }.joined() + "\r\n", "431"
                ),
                (
                    "a 100 KB request target", "GET /v1/\(String(repeating: "a", count: 100_000)) HTTP/1.1\r\n\r\n",
                    "431"
                ),
                (
                    "a declared 200 KB body",
                    "POST /v1/challenge HTTP/1.1\r\nContent-Length: 200000\r\n\r\n"
                        + String(repeating: "x", count: 200_000), "413"
                ),
                (
                    "a chunked 100 KB body",
                    "POST /v1/challenge HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + String(repeating: "1000\r\n" + String(repeating: "y", count: 4096) + "\r\n", count: 25)
                        + "0\r\n\r\n", "413"
                ),
                (
                    "endless trailer fields after a chunked body",
                    "POST /v1/challenge HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
                        + String(repeating: "X-T: v\r\n", count: 30_000), "413"
                ),
                (
                    "a huge Content-Length",
                    "POST /v1/challenge HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "413"
                ),
                ("a negative Content-Length", "POST /v1/challenge HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400"),
                (
                    "two Content-Lengths",
                    "POST /v1/challenge HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "400"
                ),
                ("NUL bytes in the target", "GET /v1/\u{0}\u{0} HTTP/1.1\r\n\r\n", "400"),
                ("HTTP/0.9", "GET /v1/health\r\n\r\n", "400"),
                ("HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "4"),
            ]
            for (name, request, status) in cases {
                let result = await exchange(request)
                #expect(result.closedByServer, "\(name): not closed")
                #expect(result.text.hasPrefix("HTTP/1.1 \(status)"), "\(name): \(result.text.prefix(200))")
            }

            // Random bytes, alone or after a plausible request line, on 300 connections.
            let seed =
                UInt64(ProcessInfo.processInfo.environment["HOSTILE_SEED"] ?? "") ?? UInt64.random(in: 1...UInt64.max)
            print("hostile: random-bytes seed \(seed) (HOSTILE_SEED=\(seed) repeats it)")
            var generator = SeededGenerator(state: seed)
            let prefixes = [
                "", "GET /v1/health HTTP/1.1\r\n", "POST /v1/challenge HTTP/1.1\r\nContent-Length: 40\r\n\r\n",
                "GET /v1/accounts/",
            ]
            let inputs: [[UInt8]] = (0..<300).map { i in
                let length = Int.random(in: 1...4096, using: &generator)
                return Array(prefixes[i % prefixes.count].utf8)
                    + (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            let results = await offloaded { concurrentExchanges(path, inputs, width: 20) }
            let notClosed = results.filter { !$0.closedByServer }.count
            let answers = results.filter { !$0.text.isEmpty }
            let malformedAnswers = answers.filter { !$0.text.hasPrefix("HTTP/1.1 ") }.count
            let ok = answers.filter { $0.text.hasPrefix("HTTP/1.1 2") }.count
            print(
                "hostile: \(results.count) random inputs: \(answers.count) answered (\(ok) with 2xx), \(notClosed) not closed"
            )
            #expect(notClosed == 0)
            #expect(malformedAnswers == 0)
            #expect(daemon.isRunning)
            #expect(try await daemon.get("/v1/health").status == 200)
            #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
        }
    }

    @Test("half-closed sockets: the answer is still delivered, then the connection is closed")
    func halfClosed() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }, server: ["idle_timeout = 5"]) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let path = daemon.socketPath
            func exchange(_ text: String) async -> Exchange {
                await offloaded { halfClosedExchange(path, Array(text.utf8), timeout: 10) }
            }
            // Answered on the event loop.
            let health = await exchange("GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(health.text.hasPrefix("HTTP/1.1 200") && health.text.contains(#""version""#), "\(health.text)")
            #expect(health.closedByServer)
            #expect(health.closedAfter < .seconds(2))

            let token = await exchange("GET /v1/accounts/alice@example.com/token?scope=skype HTTP/1.1\r\n\r\n")
            #expect(token.text.hasPrefix("HTTP/1.1 200") && token.text.contains("access_token"), "\(token.text)")
            #expect(token.closedByServer)
            // The ssl token the enrollment fetches is in: the slow read below starts an attempt of
            // its own instead of joining that one, which a slow daemon may still be running.
            #expect(try await daemon.token("alice@example.com", scope: "ssl").status == 200)

            // Answered after the provider, which takes 700 ms: the read side is closed long before.
            try await sim.addFault(#"{"endpoint":"token","kind":"latency","latency_ms":700,"count":5}"#)
            let slow = await exchange(
                "GET /v1/accounts/alice@example.com/token?scope=ssl&min_valid=1000 HTTP/1.1\r\n\r\n")
            #expect(slow.text.hasPrefix("HTTP/1.1 "), "\(slow.text)")
            #expect(slow.text.contains("\r\n\r\n{"), "no body: \(slow.text)")
            #expect(slow.closedByServer)
            #expect(
                slow.closedAfter >= .milliseconds(600), "answered in \(slow.closedAfter): the provider was not asked")
            print(
                "hostile: half-closed slow read answered \(slow.text.prefix(12)) and closed after \(slow.closedAfter)")

            let ticket = await exchange("GET /v1/accounts/alice@example.com/ticket HTTP/1.1\r\n\r\n")
            #expect(ticket.text.hasPrefix("HTTP/1.1 200"), "\(ticket.text)")
            #expect(ticket.closedByServer)

            // Two pipelined requests, then the half-close: two answers.
            let two = await exchange(
                "GET /v1/health HTTP/1.1\r\n\r\nGET /v1/accounts/alice@example.com/ticket HTTP/1.1\r\n\r\n")
            #expect(two.text.components(separatedBy: "HTTP/1.1 200").count == 3, "\(two.text)")
            #expect(two.closedByServer)

            // An answer computed off the loop, then a whole request behind it, then the
            // half-close: both are answered, in order.
            let behind = await exchange(
                "GET /v1/accounts/alice@example.com/ticket HTTP/1.1\r\n\r\nGET /v1/health HTTP/1.1\r\n\r\n")
            #expect(behind.text.components(separatedBy: "HTTP/1.1 200").count == 3, "\(behind.text.prefix(300))")
            #expect(behind.text.contains("\"ticket\"") && behind.text.hasSuffix("}") && behind.closedByServer)

            // 4,000 pipelined requests sent before reading any answer: all answered, in order,
            // the answers released as the client reads them.
            let many = await offloaded {
                halfClosedExchange(
                    path, Array(String(repeating: "GET /v1/health HTTP/1.1\r\n\r\n", count: 4000).utf8), timeout: 20)
            }
            #expect(many.text.components(separatedBy: "HTTP/1.1 200 OK").count == 4001)
            #expect(many.closedByServer)

            // A request cut short by the half-close can never finish: 400, closed.
            let partial = await exchange("GET /v1/health HTTP/1.1\r\nHost: x")
            #expect(partial.text.hasPrefix("HTTP/1.1 400"), "\(partial.text)")
            #expect(partial.closedByServer)
            #expect(partial.closedAfter < .seconds(2))

            // A half-close with nothing sent: closed at once.
            let nothing = await exchange("")
            #expect(nothing.text.isEmpty && nothing.closedByServer && nothing.closedAfter < .seconds(2))
            #expect(daemon.isRunning)
        }
    }

    @Test("server.max_connections and server.request_timeout are read and range-checked")
    func limitSettings() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        func check(_ server: String) async throws -> CommandResult {
            let path = directory.file("check.toml")
            try "[server]\n\(server)\n".write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o600)
            return try await runCommand(Products.path("tokenbrokerd"), ["--config", path, "--check-config"])
        }
        #expect(try await check("max_connections = 100\nrequest_timeout = 0.5").status == 0)
        for (bad, message) in [
            ("max_connections = 0", "check.toml:2: server.max_connections: must be 1-1048576, got 0"),
            ("max_connections = 2000000", "check.toml:2: server.max_connections: must be 1-1048576, got 2000000"),
            ("request_timeout = 0", "check.toml:2: server.request_timeout: must be more than 0, got 0"),
            ("max_connection = 5", "check.toml:2: server.max_connection: unknown key; did you mean max_connections?"),
        ] {
            let result = try await check(bad)
            #expect(result.status == 78, "\(bad): \(result.stdout)")
            #expect(result.stderr.contains(message), "\(bad): \(result.stderr)")
        }
    }

    @Test(
        "max_connections: one more connection is answered 503 temporarily_unavailable and closed; the others are served"
    )
    func connectionLimit() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 3600 }, server: ["max_connections = 40", "idle_timeout = 60"]) {
            sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let path = daemon.socketPath
            guard daemon.log.contains("broker.max_connections=40") else {
                Issue.record(
                    "tokenbrokerd does not pass server.max_connections to SocketServer (ServerLimits.maxConnections in Daemon.limits)"
                )
                return
            }
            let fds = await offloaded { openConnections(path, count: 40) }
            defer { for fd in fds { close(fd) } }
            try #require(fds.count == 40)
            try await Task.sleep(for: .milliseconds(500))
            // The test's own HTTP client may keep one connection from start-up in its pool.
            let admitted = fds.filter { !peerClosed($0) }
            #expect(admitted.count >= 39, "\(admitted.count) of 40 admitted")

            let refused = await offloaded {
                halfClosedExchange(path, Array("GET /v1/health HTTP/1.1\r\n\r\n".utf8), shutdownWrite: false)
            }
            #expect(refused.text.hasPrefix("HTTP/1.1 503"), "\(refused.text)")
            #expect(refused.text.contains(#""code":"temporarily_unavailable""#))
            #expect(refused.closedByServer)
            let refusedByClient = await offloaded { () -> String in
                do {
                    _ = try BrokerClient(socketPath: path, timeout: .seconds(5)).health()
                    return "served"
                } catch {
                    return "\(error)"
                }
            }
            print("hostile: over max_connections, BrokerClient says: \(refusedByClient)")
            #expect(refusedByClient != "served")

            // The 40 are served.
            let first = admitted[0]
            let answer = await offloaded { exchangeOn(first, Array("GET /v1/health HTTP/1.1\r\n\r\n".utf8)) }
            #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
            // Once some close, new ones are served.
            for fd in fds[30...] { shutdown(fd, Int32(SHUT_RDWR)) }
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await daemon.get("/v1/health").status == 200)
            #expect(daemon.log.contains("connection refused: server.max_connections reached"))
        }
    }
}

// MARK: - Helpers

/// What docs/SECURITY.md states an idle connection costs the daemon: "(N bytes each": the
/// hostile-client test holds the daemon to twice that, so the two stay in step.
func documentedBytesPerIdleConnection() throws -> Int {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let text = try String(contentsOf: root.appendingPathComponent("docs/SECURITY.md"), encoding: .utf8)
    guard let match = text.firstMatch(of: /idle connections cost about [0-9.]+ MB \(([0-9]+) bytes each/),
        let bytes = Int(match.1)
    else { throw DocumentedFigureMissing() }
    return bytes
}

struct DocumentedFigureMissing: Error, CustomStringConvertible {
    var description: String {
        "docs/SECURITY.md no longer says \"10,000 idle connections cost about X MB (N bytes each\""
    }
}

/// The result of one exchange on a raw socket.
struct Exchange: Sendable {
    var text: String
    var closedByServer: Bool
    /// From the last byte sent to the server's close (or the timeout).
    var closedAfter: Duration
}

/// Runs blocking work on its own thread, so that the cooperative pool stays free.
func offloaded<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

func offloaded<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: body()) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// The address of a Unix socket at `path`.
func unixAddress(_ path: String) -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
    }
    return address
}

/// A connected, blocking AF_UNIX socket, or -1.
func connectUnix(_ path: String, timeout: Double = 10) -> Int32 {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var address = unixAddress(path)
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard connected == 0 else {
        close(fd)
        return -1
    }
    return fd
}

/// Opens `count` connections and sends nothing on them.
func openConnections(_ path: String, count: Int) -> [Int32] {
    var fds: [Int32] = []
    fds.reserveCapacity(count)
    for _ in 0..<count {
        let fd = connectUnix(path)
        guard fd >= 0 else { break }
        fds.append(fd)
    }
    return fds
}

func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if n <= 0 { return false }
        offset += n
    }
    return true
}

/// Reads until the server closes (true) or `timeout` passes (false).
func readToEnd(_ fd: Int32, timeout: Duration) -> (bytes: [UInt8], closed: Bool) {
    let deadline = ContinuousClock.now + timeout
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return (out, false) }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(
            &entry, 1,
            Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
        if ready == 0 { continue }
        let n = recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT))
        if n == 0 { return (out, true) }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { continue }
            // ECONNRESET: the server closed with our bytes unread.
            return (out, true)
        }
        out += buffer[0..<n]
    }
}

/// Sends `bytes`, shuts down the writing side (unless told not to), and reads until the server closes.
func halfClosedExchange(_ path: String, _ bytes: [UInt8], timeout: Double = 5, shutdownWrite: Bool = true) -> Exchange {
    let fd = connectUnix(path)
    guard fd >= 0 else { return Exchange(text: "connect failed", closedByServer: false, closedAfter: .zero) }
    defer { close(fd) }
    _ = sendAll(fd, bytes)
    if shutdownWrite { shutdown(fd, Int32(SHUT_WR)) }
    let sent = ContinuousClock.now
    let (out, closed) = readToEnd(fd, timeout: .milliseconds(Int64(timeout * 1000)))
    return Exchange(
        text: String(decoding: out, as: UTF8.self), closedByServer: closed, closedAfter: ContinuousClock.now - sent)
}

/// Sends one request on an open connection and reads one answer (by Content-Length).
func exchangeOn(_ fd: Int32, _ bytes: [UInt8]) -> String {
    guard sendAll(fd, bytes) else { return "send failed" }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        out += buffer[0..<n]
        let text = String(decoding: out, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n"),
            let line = text[..<end.lowerBound].split(separator: "\r\n").first(where: {
                $0.lowercased().hasPrefix("content-length:")
            }),
            let length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
            text.utf8.count - text[..<end.upperBound].utf8.count >= length
        {
            break
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// Half-closed exchanges on `width` threads at once.
func concurrentExchanges(_ path: String, _ inputs: [[UInt8]], width: Int) -> [Exchange] {
    let results = Mutex([Exchange?](repeating: nil, count: inputs.count))
    DispatchQueue.concurrentPerform(iterations: width) { lane in
        for i in stride(from: lane, to: inputs.count, by: width) {
            let result = halfClosedExchange(path, inputs[i])
            results.withLock { $0[i] = result }
        }
    }
    return results.withLock { $0 }.map { $0 ?? Exchange(text: "", closedByServer: false, closedAfter: .zero) }
}

/// One slowloris client's fate.
struct Dribbled: Sendable {
    var sent: Int
    /// From the first byte to the server's close; nil if it never closed.
    var closedAfter: Duration?
    var answer: String
}

/// `clients` connections each send a request head, one byte every `every`, until the server
/// closes them or `giveUpAfter` passes. The last client dribbles a body instead.
func dribble(_ path: String, clients: Int, every: Duration, giveUpAfter: Duration) -> [Dribbled] {
    let head = Array(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: \(String(repeating: "s", count: 2000))\r\n\r\n".utf8)
    let body =
        Array("POST /v1/challenge HTTP/1.1\r\nContent-Length: 2000\r\n\r\n".utf8)
        + Array(repeating: UInt8(ascii: "b"), count: 2000)
    var fds: [Int32] = []
    var inputs: [[UInt8]] = []
    for i in 0..<clients {
        let fd = connectUnix(path)
        guard fd >= 0 else { continue }
        fds.append(fd)
        // The body dribbler sends its whole head at once.
        inputs.append(clients > 1 && i == clients - 1 ? body : head)
    }
    defer { for fd in fds { close(fd) } }
    var sent = [Int](repeating: 0, count: fds.count)
    var results = [Dribbled?](repeating: nil, count: fds.count)
    var started = [ContinuousClock.Instant?](repeating: nil, count: fds.count)
    let begin = ContinuousClock.now
    var buffer = [UInt8](repeating: 0, count: 4096)
    var answers = [[UInt8]](repeating: [], count: fds.count)
    // Closes are looked for every 5 ms, so that when one happened is known to that much; a
    // byte goes out on each connection every `every`.
    var nextSend = begin
    while results.contains(where: { $0 == nil }), ContinuousClock.now - begin < giveUpAfter {
        let sending = ContinuousClock.now >= nextSend
        if sending { nextSend += every }
        for i in fds.indices where results[i] == nil {
            // Closed by the server?
            var entry = pollfd(fd: fds[i], events: Int16(POLLIN), revents: 0)
            if poll(&entry, 1, 0) > 0 {
                let n = recv(fds[i], &buffer, buffer.count, Int32(MSG_DONTWAIT))
                if n > 0 {
                    answers[i] += buffer[0..<n]
                } else if n == 0 || (errno != EAGAIN && errno != EINTR) {
                    results[i] = Dribbled(
                        sent: sent[i], closedAfter: started[i].map { ContinuousClock.now - $0 },
                        answer: String(decoding: answers[i], as: UTF8.self))
                    continue
                }
            }
            let input = inputs[i]
            guard sending, sent[i] < input.count else { continue }
            // The body dribbler's head goes at once; then a byte at a time.
            let isBody = input.count > head.count
            let chunk = isBody && sent[i] == 0 ? input.count - 2000 : 1
            let n = input[sent[i]..<sent[i] + chunk].withUnsafeBytes {
                send(fds[i], $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                if started[i] == nil { started[i] = ContinuousClock.now }
                sent[i] += n
            }
        }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return fds.indices.map { i in
        results[i] ?? Dribbled(sent: sent[i], closedAfter: nil, answer: String(decoding: answers[i], as: UTF8.self))
    }
}

/// Whether the server has closed (or written to) a connection the test keeps idle.
func peerClosed(_ fd: Int32) -> Bool {
    var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
    return poll(&entry, 1, 0) > 0
}

/// `count` sequential token reads, a new connection each (as tokenctl does); their durations.
func readLatencies(_ client: BrokerClient, count: Int) throws -> [Duration] {
    var durations: [Duration] = []
    durations.reserveCapacity(count)
    for _ in 0..<count {
        let start = ContinuousClock.now
        let token = try client.token(account: "alice@example.com", scope: "skype")
        durations.append(ContinuousClock.now - start)
        guard !token.accessToken.isEmpty else { throw BrokerClientError.protocolError("empty token") }
    }
    return durations
}

func percentile(_ values: [Duration], _ p: Double) -> Duration {
    guard !values.isEmpty else { return .zero }
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
}

func ms(_ duration: Duration) -> String {
    String(
        format: "%.2f ms", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

/// VmRSS of a process, in kB.
func residentKilobytes(_ pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return nil }
    return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
}

/// Open descriptors of a process.
func openDescriptors(_ pid: Int32) -> Int? {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd"))?.count
}

/// The soft RLIMIT_NOFILE of a process, from /proc.
func fileLimit(of pid: Int32) -> UInt64? {
    guard let limits = try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8),
        let line = limits.split(separator: "\n").first(where: { $0.hasPrefix("Max open files") })
    else { return nil }
    return line.split(separator: " ").dropFirst(3).first.flatMap { UInt64($0) }
}

/// Raises this process's soft RLIMIT_NOFILE to at least `needed` (the hard one too, when root);
/// returns the soft limit in force. Processes started afterwards inherit it.
func ensureFileLimit(atLeast needed: UInt64) -> UInt64 {
    let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    var limit = rlimit()
    guard getrlimit(resource, &limit) == 0 else { return 0 }
    if limit.rlim_cur < needed {
        var raised = limit
        raised.rlim_cur = rlim_t(needed)
        raised.rlim_max = max(limit.rlim_max, rlim_t(needed))
        if setrlimit(resource, &raised) != 0 {
            raised = limit
            raised.rlim_cur = limit.rlim_max
            _ = setrlimit(resource, &raised)
        }
        _ = getrlimit(resource, &limit)
    }
    return UInt64(limit.rlim_cur)
}
