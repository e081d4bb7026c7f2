import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// `livesim-bench`: refresh-token throughput of a running livesim over HTTPS keep-alive.
///
/// Each connection gets its own account and grant (a grant starts a new family and revokes the
/// account's previous one, so connections must not share an account), then refreshes in a
/// closed loop, always with the newest refresh token. Only responses that complete inside the
/// measurement window count; the warm-up absorbs TLS handshakes and first-request costs.
@main
struct LiveSimBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "livesim-bench",
        abstract: "Measures POST /oauth20_token.srf refreshes per second against a running livesim.")

    @Option(help: "livesim's HTTPS base URL.")
    var url: String

    @Option(help: "The CA certificate (PEM) livesim wrote with --ca-out; the only trusted root.")
    var ca: String

    @Option(help: "livesim's control API base URL (plain HTTP).")
    var control: String

    @Option(help: "Concurrent keep-alive connections, one refresh in flight on each.")
    var connections = 16

    @Option(help: "Measured seconds.")
    var duration = 10.0

    @Option(help: "Seconds of unmeasured load before the measurement (handshakes, warm caches).")
    var warmup = 2.0

    @Option(help: "Base login; connection N uses its own account LOCAL+bench-N@DOMAIN, created if missing.")
    var login = "alice@example.com"

    @Option(help: "The scope to refresh.")
    var scope = "service::skype.com::MBI_SSL"

    @Option(help: "OAuth client id.")
    var clientID = "00000000480BC46C"

    @Option(help: "Client event-loop threads.")
    var threads = 1

    @Option(help: "livesim's process id, to report its CPU use during the measurement.")
    var serverPID: Int32?

    @Option(help: "Refreshes per second to compare the result with (informational).")
    var target: Double?

    func validate() throws {
        guard connections > 0, duration > 0, warmup >= 0, threads > 0 else {
            throw ValidationError("connections, duration and threads must be positive, warmup not negative")
        }
    }

    func run() async throws {
        let base = try BaseURL(url)
        let controlBase = try BaseURL(control)
        guard base.secure else { throw ValidationError("--url must be https://") }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        do {
            try await measure(base: base, controlBase: controlBase, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    private func measure(base: BaseURL, controlBase: BaseURL, group: MultiThreadedEventLoopGroup) async throws {

        let tokens = try await grants(controlBase: controlBase, group: group)
        let counterBefore = try await counters(controlBase, group)

        // Trust only livesim's CA, with full verification. With no server name, NIOSSL checks
        // the certificate against the peer's IP address (livesim's certificate has an IP SAN
        // for 127.0.0.1); a DNS name is sent as SNI and checked as a DNS SAN.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(ca)
        tls.certificateVerification = .fullVerification
        let sslContext = try NIOSSLContext(configuration: tls)
        let serverName: String? = isIPAddress(base.host) ? nil : base.host

        let start = nowNanos() + 200_000_000 // time to finish connecting before the clock starts
        let measureStart = start + UInt64(warmup * 1e9)
        let measureEnd = measureStart + UInt64(duration * 1e9)
        let plan = RefreshPlan(
            host: base.authority,
            formPrefix: Array(
                (FormEncoding.encode([
                    ("client_id", clientID), ("scope", scope), ("grant_type", "refresh_token"),
                ]) + "&refresh_token=").utf8),
            measureStart: measureStart, measureEnd: measureEnd,
            expectedPerConnection: Int(duration * 2_000))

        var channels: [any Channel] = []
        var results: [EventLoopFuture<ConnectionResult>] = []
        for token in tokens {
            let loop = group.next()
            let done = loop.makePromise(of: ConnectionResult.self)
            let channel = try await ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(NIOSSLClientHandler(context: sslContext, serverHostname: serverName))
                        try sync.addHTTPClientHandlers()
                        try sync.addHandler(RefreshLoopHandler(plan: plan, refreshToken: token, done: done))
                    }
                }
                .connect(host: base.host, port: base.port).get()
            channels.append(channel)
            results.append(done.futureResult)
        }
        try await sleep(until: start)
        for channel in channels { channel.pipeline.fireUserInboundEventTriggered(StartRefreshing()) }

        try await sleep(until: measureStart)
        let cpuBefore = CPUSample(serverPID: serverPID)
        try await sleep(until: measureEnd)
        let cpuAfter = CPUSample(serverPID: serverPID)

        var outcomes: [ConnectionResult] = []
        for future in results { outcomes.append(try await future.get()) }
        let counterAfter = try await counters(controlBase, group)

        let report = Report(
            outcomes: outcomes, seconds: Double(measureEnd - measureStart) / 1e9, cpu: (cpuBefore, cpuAfter),
            serverDelta: counterDelta(counterBefore, counterAfter))
        print(report.text(url: base, connections: connections, threads: threads, warmup: warmup, target: target))
        if report.failures > 0 || report.connectionErrors > 0 { throw ExitCode(1) }
    }

    /// One account per connection (creating it if missing) and a fresh grant for each.
    private func grants(controlBase: BaseURL, group: any EventLoopGroup) async throws -> [String] {
        let health = try await ControlClient.request(.GET, "/_livesim/health", base: controlBase, group: group)
        guard health.status == 200 else { throw BenchError("control API health: HTTP \(health.status) \(health.body)") }
        let at = login.lastIndex(of: "@") ?? login.endIndex
        let local = login[..<at]
        let domain = login[at...]
        var tokens: [String] = []
        for n in 0..<connections {
            let name = "\(local)+bench-\(n)\(domain)"
            let created = try await ControlClient.request(
                .POST, "/_livesim/accounts",
                json: #"{"login":\#(ControlClient.quote(name)),"password":"x"}"#, base: controlBase, group: group)
            guard created.status == 201 || created.status == 409 else {
                throw BenchError("creating account \(name): HTTP \(created.status) \(created.body)")
            }
            let grant = try await ControlClient.request(
                .POST, "/_livesim/accounts/\(FormEncoding.escape(name))/grant",
                json: #"{"scope":\#(ControlClient.quote(scope))}"#, base: controlBase, group: group)
            guard grant.status == 201 || grant.status == 200, let token = grant.json["refresh_token"] as? String else {
                throw BenchError("grant for \(name): HTTP \(grant.status) \(grant.body)")
            }
            tokens.append(token)
        }
        return tokens
    }

    private func counters(_ controlBase: BaseURL, _ group: any EventLoopGroup) async throws -> [String: Any] {
        try await ControlClient.request(.GET, "/_livesim/counters", base: controlBase, group: group).json
    }

    /// The server-side counters that say whether rotation went as intended during the run.
    private func counterDelta(_ before: [String: Any], _ after: [String: Any]) -> [(String, Int)] {
        func failures(_ c: [String: Any]) -> Int { (c["refresh_failures"] as? [String: Int])?.values.reduce(0, +) ?? 0 }
        func int(_ c: [String: Any], _ key: String) -> Int { c[key] as? Int ?? 0 }
        return [
            ("refreshes", int(after, "refreshes") - int(before, "refreshes")),
            ("refresh_failures", failures(after) - failures(before)),
            ("refresh_token_reuse", int(after, "refresh_token_reuse") - int(before, "refresh_token_reuse")),
            ("rotated_grace_uses", int(after, "rotated_grace_uses") - int(before, "rotated_grace_uses")),
        ]
    }

    private func sleep(until deadline: UInt64) async throws {
        let now = nowNanos()
        if deadline > now { try await Task.sleep(nanoseconds: deadline - now) }
    }

    private func isIPAddress(_ host: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }
}

/// CPU time used so far by this process, by livesim, and by the whole machine, so the report
/// can say who used the two cores during the window.
struct CPUSample {
    var wall = nowNanos()
    var client: Double
    var server: Double?
    /// Busy and total jiffies over all cores, from /proc/stat.
    var machineBusy: Double
    var machineTotal: Double

    init(serverPID: Int32?) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        client =
            Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
            + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        server = serverPID.flatMap { pid in
            // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let paren = stat.lastIndex(of: ")")
            else { return nil }
            let fields = stat[stat.index(after: paren)...].split(separator: " ")
            guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
            return (user + system) / ticks
        }
        let cpuLine = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?.split(separator: "\n").first ?? ""
        let values = cpuLine.split(separator: " ").dropFirst().compactMap { Double($0) }
        machineTotal = values.prefix(8).reduce(0, +) / ticks
        machineBusy = machineTotal - (values.count > 4 ? (values[3] + values[4]) / ticks : 0)
    }
}

/// Aggregates per-connection results into the printed figures.
struct Report {
    var successes: Int
    var failures: Int
    var connectionErrors: Int
    var warmupRequests: Int
    var seconds: Double
    var sorted: [UInt64]
    var failuresByStatus: [UInt: Int]
    var firstFailure: String?
    var errors: [String]
    var cpu: (CPUSample, CPUSample)
    var serverDelta: [(String, Int)]
    var perConnection: [Int]

    init(outcomes: [ConnectionResult], seconds: Double, cpu: (CPUSample, CPUSample), serverDelta: [(String, Int)]) {
        successes = outcomes.reduce(0) { $0 + $1.successes }
        failures = outcomes.reduce(0) { $0 + $1.failures }
        warmupRequests = outcomes.reduce(0) { $0 + $1.warmupRequests }
        errors = outcomes.compactMap(\.connectionError)
        connectionErrors = errors.count
        sorted = outcomes.flatMap(\.latencies).sorted()
        failuresByStatus = outcomes.reduce(into: [:]) { acc, o in acc.merge(o.failuresByStatus, uniquingKeysWith: +) }
        firstFailure = outcomes.lazy.compactMap(\.firstFailure).first
        perConnection = outcomes.map(\.successes)
        self.seconds = seconds
        self.cpu = cpu
        self.serverDelta = serverDelta
    }

    /// Nearest-rank percentile, in milliseconds.
    func percentile(_ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up))
        return Double(sorted[min(sorted.count, max(1, rank)) - 1]) / 1e6
    }

    var rate: Double { Double(successes) / seconds }

    func text(url: BaseURL, connections: Int, threads: Int, warmup: Double, target: Double?) -> String {
        func f(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }
        let (a, b) = cpu
        let wall = Double(b.wall - a.wall) / 1e9
        var lines: [String] = []
        lines.append(
            "livesim-bench: \(url) POST /oauth20_token.srf, \(connections) connections, \(threads) client thread(s), \(f(warmup, 1)) s warm-up, \(f(seconds, 1)) s measured"
        )
        lines.append(
            "refreshes: \(successes) ok, \(failures) failed, \(connectionErrors) connection errors (\(warmupRequests) warm-up requests not counted)"
        )
        lines.append("throughput: \(f(rate, 0)) refreshes/s")
        lines.append(
            "latency ms: p50 \(f(percentile(0.5), 3))  p99 \(f(percentile(0.99), 3))  p99.9 \(f(percentile(0.999), 3))  max \(f(percentile(1), 3))"
        )
        if let lo = perConnection.min(), let hi = perConnection.max() {
            lines.append("per connection: min \(lo)  max \(hi) successes")
        }
        let clientCores = (b.client - a.client) / wall
        var cpuLine = "cpu over the window (cores): client \(f(clientCores))"
        var serverCores = 0.0
        if let s0 = a.server, let s1 = b.server {
            serverCores = (s1 - s0) / wall
            cpuLine += ", livesim \(f(serverCores))"
        }
        let total = b.machineTotal - a.machineTotal
        if total > 0 {
            let cores = Double(ProcessInfo.processInfo.activeProcessorCount)
            let busy = (b.machineBusy - a.machineBusy) / total
            cpuLine += ", machine busy \(f(100 * busy, 0))% of \(Int(cores)) cores"
            // Anything else running skews the figure; say how much there was.
            if a.server != nil {
                cpuLine += " (other processes \(f(max(0, busy * cores - clientCores - serverCores))))"
            }
        }
        lines.append(cpuLine)
        lines.append(
            "livesim counters during the run: " + serverDelta.map { "\($0.0) \($0.1)" }.joined(separator: ", "))
        if !failuresByStatus.isEmpty {
            lines.append(
                "failures by status: "
                    + failuresByStatus.sorted { $0.key < $1.key }.map {
                        "\($0.key == 0 ? "200 without refresh_token" : String($0.key)): \($0.value)"
                    }.joined(separator: ", "))
        }
        if let firstFailure { lines.append("first failure body: \(firstFailure)") }
        for error in Set(errors) { lines.append("connection error: \(error)") }
        if let target { lines.append("target \(f(target, 0))/s: \(rate >= target ? "met" : "NOT met")") }
        lines.append(
            "RESULT rps=\(f(rate, 0)) ok=\(successes) failed=\(failures + connectionErrors) p50_ms=\(f(percentile(0.5), 3)) p99_ms=\(f(percentile(0.99), 3)) p999_ms=\(f(percentile(0.999), 3))"
        )
        return lines.joined(separator: "\n")
    }
}
