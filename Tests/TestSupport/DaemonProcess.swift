import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1

/// Where `swift build` put the executables: next to the test bundle, unless
/// `TOKENBROKER_TEST_PRODUCTS` names another directory (a release build's, to measure it with the
/// debug tests: `swift build -c release` and `TOKENBROKER_TEST_PRODUCTS=.build/release`).
public enum Products {
    public static let directory: URL = {
        if let chosen = ProcessInfo.processInfo.environment["TOKENBROKER_TEST_PRODUCTS"], !chosen.isEmpty {
            print("products: the daemon, tokenctl and livesim from \(chosen)")
            return URL(fileURLWithPath: chosen)
        }
        let fromBundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: fromBundle.appendingPathComponent("tokenbrokerd").path) {
            return fromBundle
        }
        // Fall back to the package's default debug folder.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug")
    }()

    public static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
}

/// The result of running a command to completion.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs a program with optional standard input and waits for it (on a thread of its own:
/// `Spawn.finished`).
public func runCommand(_ path: String, _ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
    let base = NSTemporaryDirectory() + "run-\(UUID().uuidString)"
    defer {
        unlink(base + ".out")
        unlink(base + ".err")
    }
    let pid = try Spawn.start([path] + arguments, stdin: stdin, stdout: base + ".out", stderr: base + ".err")
    let status = await Spawn.finished(pid)
    return CommandResult(
        status: status, stdout: readText(base + ".out") ?? "", stderr: readText(base + ".err") ?? "")
}

/// A file's text, nil if it cannot be opened. Read through `FileHandle`: on Linux,
/// `String(contentsOfFile:)` and `Data(contentsOf:)` lose a 4 KB buffer on every empty file
/// (FoundationEssentials' readBytesFromFile hands it to an empty `Data`, which never frees it), and
/// a command's output or a log is often empty. AddressSanitizer's leak check reports each.
public func readText(_ path: String) -> String? {
    guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
    defer { try? handle.close() }
    guard let data = try? handle.readToEnd() else { return "" }
    return String(decoding: data, as: UTF8.self)
}

/// Writes a daemon configuration for this user only (0600), whatever the umask: the daemon refuses
/// a configuration others can write, and an ordinary user's umask is often 002.
public func writeConfiguration(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    chmod(path, 0o600)
}

/// A real `tokenbrokerd` process with its own state directory and socket, configured for one
/// realm served by a livesim fixture.
public final class DaemonProcess: @unchecked Sendable {
    public let directory: TemporaryDirectory
    public let socketPath: String
    public let configPath: String
    public let logPath: String
    private var process: pid_t?
    private let http: HTTPClient

    /// `refresh` and `extra` are TOML lines for the `[refresh]` table and the top level.
    public init(
        sim: LiveSimFixture, refresh: [String] = [], server: [String] = [], socket: [String] = [],
        topLevel: [String] = [], extra: String = "", logLevel: String = "debug"
    ) throws {
        directory = try TemporaryDirectory()
        socketPath = directory.file("tokenbroker.sock")
        configPath = directory.file("tokenbroker.toml")
        logPath = directory.file("daemon.log")
        try sim.writeCA(to: directory.file("ca.pem"))
        let base = sim.base()
        let config = """
            \(topLevel.joined(separator: "\n"))
            [socket]
            path = "\(socketPath)"
            \(socket.joined(separator: "\n"))
            [state]
            directory = "\(directory.file("state"))"
            [refresh]
            \(refresh.joined(separator: "\n"))
            [server]
            \(server.joined(separator: "\n"))
            [log]
            level = "\(logLevel)"
            [realms.sim]
            login_url = "\(base)"
            user_initialization_url = "\(base)"
            skypetoken_url = "\(base)"
            ca_file = "\(directory.file("ca.pem"))"
            \(extra)
            """
        try writeConfiguration(config, to: configPath)
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        // Drop idle connections well before the daemon does (its idle_timeout is 10 s), so that a
        // request after a pause never picks a connection the daemon is closing at that moment.
        // A test that shortens the daemon's idle_timeout gets a quarter of it.
        let daemonIdle =
            server.lazy.compactMap { line -> Double? in
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return parts.count == 2 && parts[0] == "idle_timeout" ? Double(parts[1]) : nil
            }.first ?? 10
        configuration.connectionPool = .init(idleTimeout: .milliseconds(Int64(min(2.0, daemonIdle / 4) * 1000)))
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// A command the daemon is started through (it must exec the daemon in the same process),
    /// for example `unshare --mount` with a script that mounts a small tmpfs first.
    public var launcher: [String] = []

    /// Starts the daemon and waits until its socket answers.
    public func start() async throws {
        let command = launcher + [Products.path("tokenbrokerd"), "--config", configPath]
        let pid = try Spawn.start(command, stdout: logPath, stderr: logPath)
        self.process = pid
        for _ in 0..<200 {
            if let response = try? await get("/v1/health"), response.status == 200 { return }
            guard Spawn.isRunning(pid) else {
                self.process = nil
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw DaemonError.notReady(log: readText(logPath) ?? "")
    }

    public enum DaemonError: Error { case notReady(log: String) }

    /// SIGTERM, then wait; returns the exit status.
    @discardableResult
    public func stop() async -> Int32 {
        guard let pid = process else { return -1 }
        kill(pid, SIGTERM)
        self.process = nil
        return await Spawn.finished(pid)
    }

    public var isRunning: Bool { process.map(Spawn.isRunning) ?? false }

    /// SIGKILL, as a crash would: no shutdown code runs.
    public func crash() async {
        guard let pid = process else { return }
        kill(pid, SIGKILL)
        self.process = nil
        _ = await Spawn.finished(pid)
    }

    /// The running daemon's process id.
    public var pid: Int32? { process }

    public func shutdown() async {
        await stop()
        try? await http.shutdown()
        directory.cleanup()
    }

    public var log: String { readText(logPath) ?? "" }

    /// An HTTP request over the Unix socket.
    public func request(_ method: HTTPMethod, _ path: String, body: String? = nil) async throws -> TestResponse {
        let encoded = socketPath.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? socketPath
        var request = HTTPClientRequest(url: "http+unix://\(encoded)\(path)")
        request.method = method
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return TestResponse(
            status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
            body: String(buffer: bytes))
    }

    public func get(_ path: String) async throws -> TestResponse { try await request(.GET, path) }

    /// `GET /v1/accounts/{name}/token`.
    public func token(_ account: String, scope: String, minValid: Int? = nil) async throws -> TestResponse {
        var path = "/v1/accounts/\(account)/token?scope=\(scope)"
        if let minValid { path += "&min_valid=\(minValid)" }
        return try await get(path)
    }

    /// Runs tokenctl against this daemon's socket (waiting for it on a thread of its own, so that
    /// a sign-in against a login server that hangs, say, does not hold one of the few threads
    /// every test's tasks share).
    public func tokenctl(_ arguments: [String], stdin: String? = nil) async throws -> CommandResult {
        try await runCommand(Products.path("tokenctl"), ["--socket", socketPath] + arguments, stdin: stdin)
    }

    /// Enrolls an account through the control API's direct grant and `tokenctl import`.
    public func importAccount(_ login: String, sim: LiveSimFixture, name: String? = nil) async throws {
        let refreshToken = try await sim.grant(login)["refresh_token"] as? String ?? ""
        var arguments = ["import", login, "--refresh-token-stdin"]
        if let name { arguments += ["--name", name] }
        let result = try await tokenctl(arguments, stdin: refreshToken + "\n")
        guard result.status == 0 else { throw ImportError.failed(result.stderr) }
    }

    public enum ImportError: Error { case failed(String) }
}
