import ArgumentParser
import CEpoll
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `socket-bench`: an HTTP/1.1 load generator for Unix-domain sockets (`load`), and a start-up
/// timer for a daemon that serves one (`startup`). Used by scripts/bench.sh against
/// tokenbrokerd and against nginx with the same loads.
@main
struct SocketBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socket-bench",
        abstract: "HTTP/1.1 load over a Unix socket: requests/s and latency percentiles; daemon start-up time.",
        subcommands: [Load.self, Startup.self],
        defaultSubcommand: Load.self)
}

struct Load: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Closed-loop GET requests over N connections for a duration; prints requests/s and p50/p99/p99.9.")

    @Option(help: "The Unix socket to connect to.")
    var socket: String

    @Option(help: "The request target (path and query).")
    var path = "/v1/health"

    @Option(help: "The Host header.")
    var host = "localhost"

    @Option(help: "Concurrent connections, one request in flight on each.")
    var connections = 1

    @Flag(help: "Open a new connection for every request (and send Connection: close), as tokenctl and curl do.")
    var newConnection = false

    @Option(help: "Measured seconds.")
    var duration = 5.0

    @Option(help: "Seconds of unmeasured load first.")
    var warmup = 1.0

    @Option(help: "Client threads, each with its own epoll loop and a share of the connections.")
    var threads = 1

    @Option(help: "The status that counts as a success.")
    var expectStatus = 200

    @Option(
        help: "A server process id whose CPU use over the window is reported (repeatable: nginx master and worker).")
    var serverPID: [Int32] = []

    @Option(help: "A label for the RESULT line.")
    var label = "load"

    @Option(
        help: ArgumentHelp(
            "A second server's Unix socket. The two take turns in slices of --slice seconds, with the same load, and each gets its own RESULT line.",
            discussion:
                "Both see the same machine: a change of the machine's speed that lasts longer than a slice reaches both alike."
        ))
    var versus: String?

    @Option(help: "The label of the --versus server's RESULT line.")
    var versusLabel = "versus"

    @Option(help: "A --versus server process id whose CPU use is reported (repeatable).")
    var versusServerPID: [Int32] = []

    @Option(help: "With --versus: the length of each server's turn, in seconds.")
    var slice = 0.1

    func validate() throws {
        guard connections > 0, duration > 0, warmup >= 0, threads > 0, slice > 0 else {
            throw ValidationError("connections, duration, threads and slice must be positive, warmup not negative")
        }
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        var head = "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: socket-bench\r\nAccept: application/json\r\n"
        if newConnection { head += "Connection: close\r\n" }
        head += "\r\n"
        let threads = min(self.threads, connections)
        let start = monoNanos() + 20_000_000
        let measureStart = start + UInt64(warmup * 1e9)
        let measureEnd = measureStart + UInt64(duration * 1e9)
        let sliceNanos = UInt64(slice * 1e9)
        func plan(_ socket: String) -> LoadPlan {
            LoadPlan(
                socketPath: socket, request: Array(head.utf8), newConnection: newConnection,
                expectedStatus: expectStatus,
                expectedPerWorker: min(20_000_000, Int(duration * 200_000) / threads))
        }
        let servers = [plan(socket)] + (versus.map { [plan($0)] } ?? [])

        // results[server][thread]
        let results = servers.map { _ in ResultBox(count: threads) }
        let done = DispatchGroup()
        for t in 0..<threads {
            let share = connections / threads + (t < connections % threads ? 1 : 0)
            done.enter()
            let thread = Thread {
                let workers = servers.map { LoadWorker(plan: $0, connections: share) }
                if workers.count == 1 {
                    workers[0].run(from: measureStart, until: measureEnd)
                } else {
                    // Turns by the clock, the same on every thread: slice k goes to server k % 2.
                    var k: UInt64 = 0
                    while start + k * sliceNanos < measureEnd {
                        let end = min(start + (k + 1) * sliceNanos, measureEnd)
                        workers[Int(k % 2)].run(from: measureStart, until: end)
                        k += 1
                    }
                }
                for w in workers { w.closeAll() }
                for (s, w) in workers.enumerated() { results[s].set(t, w.results) }
                done.leave()
            }
            thread.stackSize = 1 << 20
            thread.start()
        }
        let pids = [serverPID, versusServerPID]
        sleep(until: measureStart)
        let before = servers.indices.map { CPUSample(serverPIDs: pids[$0]) }
        sleep(until: measureEnd)
        let after = servers.indices.map { CPUSample(serverPIDs: pids[$0]) }
        done.wait()

        let labels = [label, versusLabel]
        let sockets = [socket, versus ?? ""]
        var failed = false
        for s in servers.indices {
            let all = results[s].all
            // Each server's own measured time: with --versus, about half the window.
            let seconds = Double(all.reduce(0) { $0 + $1.measuredNanos }) / Double(max(all.count, 1)) / 1e9
            let report = LoadReport(all, seconds: seconds, cpu: (before[s], after[s]))
            print(
                report.text(
                    label: labels[s], socket: sockets[s], path: path, connections: connections,
                    newConnection: newConnection, threads: threads, warmup: warmup,
                    turns: versus == nil ? nil : slice))
            if report.ok == 0 { failed = true }
        }
        if failed { throw ExitCode(1) }
    }
}

/// Per-thread results, written once by each worker.
final class ResultBox: Sendable {
    private let results: Mutex<[WorkerResult?]>
    init(count: Int) { results = Mutex(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ result: WorkerResult) { results.withLock { $0[i] = result } }
    var all: [WorkerResult] { results.withLock { $0.compactMap { $0 } } }
}

func sleep(until deadline: UInt64) {
    let now = monoNanos()
    if deadline > now { usleep(UInt32(min(UInt64(UInt32.max), (deadline - now) / 1000))) }
}

/// CPU seconds used so far by this process and by the given server processes (all threads).
struct CPUSample {
    var wall = monoNanos()
    var client: Double
    var server: Double?

    init(serverPIDs: [Int32]) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        client =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        server = serverPIDs.isEmpty ? nil : serverPIDs.compactMap(Self.processCPU).reduce(0, +)
    }

    /// utime + stime of a process, from /proc/PID/stat.
    static func processCPU(_ pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let paren = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: paren)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

struct LoadReport {
    var ok: Int
    var bad: Int
    var errors: Int
    var connectRetries: Int
    var warmupRequests: Int
    var seconds: Double
    var sorted: [UInt32]
    var statuses: [Int: Int]
    var firstError: String?
    var firstBad: String?
    var bodyBytes: Int
    var cpu: (CPUSample, CPUSample)

    init(_ results: [WorkerResult], seconds: Double, cpu: (CPUSample, CPUSample)) {
        ok = results.reduce(0) { $0 + $1.ok }
        bad = results.reduce(0) { $0 + $1.bad }
        errors = results.reduce(0) { $0 + $1.errors }
        connectRetries = results.reduce(0) { $0 + $1.connectRetries }
        warmupRequests = results.reduce(0) { $0 + $1.warmup }
        var all: [UInt32] = []
        all.reserveCapacity(results.reduce(0) { $0 + $1.latencies.count })
        for r in results { all += r.latencies }
        all.sort()
        sorted = all
        statuses = results.reduce(into: [:]) { acc, r in acc.merge(r.statuses, uniquingKeysWith: +) }
        firstError = results.lazy.compactMap(\.firstError).first
        firstBad = results.lazy.compactMap(\.firstBadResponse).first
        bodyBytes = results.map(\.bodyBytes).max() ?? 0
        self.seconds = seconds
        self.cpu = cpu
    }

    /// Nearest-rank percentile, in microseconds.
    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return Double(sorted[min(sorted.count, max(1, rank)) - 1]) / 1e3
    }

    var rate: Double { Double(ok) / seconds }

    func text(
        label: String, socket: String, path: String, connections: Int, newConnection: Bool, threads: Int,
        warmup: Double, turns: Double?
    ) -> String {
        func f(_ v: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", v) }
        let (a, b) = cpu
        let wall = Double(b.wall - a.wall) / 1e9
        // The client works for both servers when they take turns: its share is over the whole window.
        let clientCPU = (b.client - a.client) / wall
        // A server is busy only in its own turns: its CPU is over its own measured time.
        let serverCPU = a.server.flatMap { s0 in b.server.map { ($0 - s0) / (turns == nil ? wall : seconds) } }
        var lines: [String] = []
        let turnsText = turns.map { ", turns of \(f($0 * 1000, 0)) ms with another server" } ?? ""
        lines.append(
            "socket-bench [\(label)]: GET \(path) on \(socket), \(connections) connection(s), \(newConnection ? "new connection per request" : "keep-alive"), \(threads) thread(s), \(f(warmup)) s warm-up, \(f(seconds)) s measured\(turnsText)"
        )
        lines.append(
            "  \(f(rate, 0)) requests/s; \(ok) ok, \(bad) other status, \(errors) connection errors, \(connectRetries) connect retries (backlog full), \(warmupRequests) warm-up requests; body \(bodyBytes) bytes"
        )
        lines.append(
            "  latency us: p50 \(f(percentile(0.5)))  p99 \(f(percentile(0.99)))  p99.9 \(f(percentile(0.999)))  max \(f(percentile(1)))"
        )
        var cpuLine = "  cpu (cores): client \(f(clientCPU, 2))"
        if let serverCPU { cpuLine += ", server \(f(serverCPU, 2))" }
        lines.append(cpuLine)
        if !statuses.isEmpty {
            lines.append(
                "  other statuses: "
                    + statuses.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        }
        if let firstBad {
            lines.append(
                "  first other response: \(firstBad.prefix(300).replacingOccurrences(of: "\r\n", with: " | "))")
        }
        if let firstError { lines.append("  first error: \(firstError)") }
        var result =
            "RESULT label=\(label) rps=\(f(rate, 0)) p50_us=\(f(percentile(0.5))) p99_us=\(f(percentile(0.99))) p999_us=\(f(percentile(0.999)))"
        result +=
            " max_us=\(f(percentile(1))) ok=\(ok) bad=\(bad) errors=\(errors) bytes=\(bodyBytes) client_cpu=\(f(clientCPU, 2))"
        if let serverCPU { result += " server_cpu=\(f(serverCPU, 2))" }
        lines.append(result)
        return lines.joined(separator: "\n")
    }
}
