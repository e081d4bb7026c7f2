import Foundation
import LiveSim
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
    import NIOHTTP1
#endif

/// A NOTIFY_SOCKET as systemd has one: an AF_UNIX datagram socket that collects sd_notify messages.
/// A thread of its own reads it at once, as PID 1 does: sd_notify blocks the sender while the
/// receiver's queue is full.
final class NotifyListener: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let received = Mutex<[String]>([])

    init(path: String) throws {
        self.path = path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0 else { throw POSIXError(.EADDRINUSE) }
        let descriptor = self.fd
        let thread = Thread { [weak self] in
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = recv(descriptor, &buffer, buffer.count, 0)
                if n <= 0 { return }
                guard let self else { return }
                let message = String(decoding: buffer[0..<n], as: UTF8.self).replacingOccurrences(of: "\n", with: "|")
                self.received.withLock { $0.append(message) }
            }
        }
        thread.start()
    }

    /// Ends the reader thread.
    func close() {
        shutdown(fd, Int32(SHUT_RDWR))
        Glibc.close(fd)
    }

    /// Every message so far, each with its assignments joined by "|".
    var messages: [String] { received.withLock { $0 } }

    /// Waits until a message satisfies `match`; returns it.
    func wait(seconds: Double = 10, for match: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
        while ContinuousClock.now < deadline {
            if let found = messages.first(where: match) { return found }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw NotifyTimeout(messages: messages)
    }

    struct NotifyTimeout: Error, CustomStringConvertible {
        var messages: [String]
        var description: String { "no matching notification; got \(messages)" }
    }
}

/// Runs tokenbrokerd (optionally behind another program, such as systemd-socket-activate) with
/// extra environment, against the configuration of a DaemonProcess.
final class LaunchedDaemon: @unchecked Sendable {
    let pid: pid_t
    private let exit = Mutex<Int32?>(nil)

    init(_ daemon: DaemonProcess, environment: [String: String], launcher: [String] = []) throws {
        let command = launcher + [Products.path("tokenbrokerd"), "--config", daemon.configPath]
        var overrides: [String: String?] = [:]
        for key in [
            "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
            "JOURNAL_STREAM",
        ] {
            overrides[key] = .some(nil)
        }
        for (key, value) in environment { overrides[key] = value }
        pid = try Spawn.start(command, stdout: daemon.logPath, stderr: daemon.logPath, environment: overrides)
    }

    func signal(_ number: Int32) { kill(pid, number) }

    /// Reaps the daemon if it has ended; its exit status then.
    private func ended() -> Int32? {
        exit.withLock { status in
            if status == nil { status = Spawn.poll(pid) }
            return status
        }
    }

    /// SIGTERM and the exit status; SIGKILL (and -1) after 15 s. Waits without blocking a thread
    /// of the test's concurrency pool.
    func stop() async -> Int32 {
        if ended() == nil { signal(SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(15)
        while ended() == nil, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if let status = ended() { return status }
        signal(SIGKILL)
        while ended() == nil { try? await Task.sleep(for: .milliseconds(20)) }
        return -1
    }
}

let socketActivate = ["/usr/bin/systemd-socket-activate", "/bin/systemd-socket-activate"].first {
    FileManager.default.isExecutableFile(atPath: $0)
}

/// tokenbrokerd under systemd, without PID 1: sd_notify through a NOTIFY_SOCKET listener, and
/// socket activation through systemd-socket-activate. scripts/systemd-test.sh covers a real PID 1.
@Suite("systemd integration without PID 1", .serialized)
struct SystemdTests {
    @Test(
        "sd_notify: READY=1 once listening, STATUS=, health-checked WATCHDOG=1, RELOADING=1/READY=1 on SIGHUP, STOPPING=1"
    )
    func notifySequence() async throws {
        try await withLiveSim { sim in
            try await withConfiguredDaemon(sim, topLevel: ["scopes = [\"skype\", \"ssl\"]"]) { daemon in
                let listener = try NotifyListener(path: daemon.directory.file("notify.sock"))
                defer { listener.close() }
                let launched = try LaunchedDaemon(
                    daemon, environment: ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "1000000"])
                do {
                    let ready = try await listener.wait { $0.hasPrefix("READY=1") }
                    #expect(ready.contains("|STATUS=no accounts enrolled"))
                    // Ready means listening: the first request is answered at once.
                    #expect(try await daemon.get("/v1/health").status == 200)
                    #expect(listener.messages.first == ready, "READY=1 comes first: \(listener.messages)")

                    try await daemon.importAccount("alice@example.com", sim: sim)
                    let status = try await listener.wait {
                        $0.hasPrefix("STATUS=1 account, 0 need sign-in, next refresh in ")
                    }
                    #expect(!status.contains("|"))
                    _ = try await listener.wait { _ in listener.messages.filter { $0 == "WATCHDOG=1" }.count >= 3 }

                    // A reload: the new file takes scope ssl away; a broken file is refused and changes nothing.
                    try daemon.rewriteTopLevel(["scopes = [\"skype\"]"])
                    launched.signal(SIGHUP)
                    _ = try await listener.wait { $0.hasPrefix("RELOADING=1|MONOTONIC_USEC=") }
                    _ = try await listener.wait { _ in
                        listener.messages.filter { $0.hasPrefix("READY=1|STATUS=1 account") }.count == 1
                    }
                    let afterReload = listener.messages.drop { !$0.hasPrefix("RELOADING=1") }
                    #expect(
                        afterReload.contains { $0.hasPrefix("READY=1") }, "READY=1 follows RELOADING=1: \(afterReload)")
                    #expect(try await daemon.token("alice@example.com", scope: "ssl").errorCode == "unknown_scope")
                    #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)

                    let text = try String(contentsOfFile: daemon.configPath, encoding: .utf8)
                    try writeConfiguration("bogus_key = 1\n" + text, to: daemon.configPath)
                    launched.signal(SIGHUP)
                    _ = try await listener.wait { _ in
                        listener.messages.filter { $0.hasPrefix("READY=1|STATUS=1 account") }.count == 2
                    }
                    #expect(
                        daemon.log.contains("configuration reload refused; the previous configuration stays in force"))
                    #expect(daemon.log.contains("tokenbroker.toml:1: bogus_key: unknown key at the top level"))
                    #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
                    #expect(try await daemon.token("alice@example.com", scope: "ssl").errorCode == "unknown_scope")

                    let exitStatus = await launched.stop()
                    #expect(exitStatus == 0, "exit status \(exitStatus); daemon log:\n\(daemon.log.suffix(3000))")
                    let messages = listener.messages
                    #expect(messages.last?.hasPrefix("STOPPING=1") == true, "\(messages.suffix(3))")
                    #expect(messages.filter { $0.hasPrefix("READY=1") }.count == 3)
                } catch {
                    _ = await launched.stop()
                    print("daemon log:\n" + daemon.log.suffix(4000))
                    throw error
                }
            }
        }
    }

    @Test("no WATCHDOG_USEC, no pings; no NOTIFY_SOCKET, no harm")
    func withoutWatchdog() async throws {
        try await withLiveSim { sim in
            try await withConfiguredDaemon(sim) { daemon in
                let listener = try NotifyListener(path: daemon.directory.file("notify.sock"))
                defer { listener.close() }
                let launched = try LaunchedDaemon(daemon, environment: ["NOTIFY_SOCKET": listener.path])
                _ = try await listener.wait { $0.hasPrefix("READY=1") }
                try await Task.sleep(for: .milliseconds(1500))
                #expect(!listener.messages.contains("WATCHDOG=1"))
                #expect(await launched.stop() == 0)

                let plain = try LaunchedDaemon(daemon, environment: [:])
                var answered = false
                for _ in 0..<100 where !answered {
                    answered = (try? await daemon.get("/v1/health").status) == 200
                    if !answered { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(answered)
                #expect(await plain.stop() == 0)
            }
        }
    }

    @Test(
        "socket activation: systemd-socket-activate passes the socket; the daemon adopts it and leaves it in place",
        .enabled(if: socketActivate != nil, "needs systemd-socket-activate (the systemd package)"))
    func socketActivation() async throws {
        try await withLiveSim { sim in
            try await withConfiguredDaemon(sim) { daemon in
                let listener = try NotifyListener(path: daemon.directory.file("notify.sock"))
                defer { listener.close() }
                // The listening socket exists before the daemon runs: it is started on the first connection.
                let launched = try LaunchedDaemon(
                    daemon, environment: ["NOTIFY_SOCKET": listener.path],
                    launcher: [socketActivate!, "-l", daemon.socketPath, "--fdname=tokenbroker", "-E", "NOTIFY_SOCKET"])
                do {
                    // systemd-socket-activate says so once it listens; the daemon is not started yet.
                    var listening = false
                    for _ in 0..<250 where !listening {
                        listening = daemon.log.contains("Listening on \(daemon.socketPath)")
                        if !listening { try await Task.sleep(for: .milliseconds(20)) }
                    }
                    try #require(listening, "\(daemon.log)")
                    #expect(listener.messages.isEmpty, "not started before the first connection")
                    let health = try await daemon.get("/v1/health")
                    #expect(health.status == 200)
                    _ = try await listener.wait { $0.hasPrefix("READY=1") }
                    #expect(daemon.log.contains("using the socket passed by systemd"))
                    #expect(daemon.log.contains("broker.fd_name=tokenbroker"))
                    // Enrolled over the socket directly: spawning tokenctl while this test's child
                    // (systemd-socket-activate, now the daemon) runs trips Foundation's child reaping.
                    let refreshToken = try await sim.grant("alice@example.com")["refresh_token"] as? String ?? ""
                    let enrolled = try await daemon.request(
                        .POST, "/v1/accounts",
                        body:
                            #"{"method": "refresh_token", "login": "alice@example.com", "refresh_token": "\#(refreshToken)"}"#
                    )
                    #expect(enrolled.status == 201, "\(enrolled.body)")
                    #expect(try await daemon.token("alice@example.com", scope: "skype").status == 200)
                } catch {
                    _ = await launched.stop()
                    print("daemon log:\n" + daemon.log.suffix(4000))
                    throw error
                }
                #expect(await launched.stop() == 0)
                // The socket belongs to systemd: the daemon does not remove it.
                var info = stat()
                #expect(lstat(daemon.socketPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK)
            }
        }
    }
}

/// A daemon configuration (directory, config file, HTTP client) without a process: the tests
/// start tokenbrokerd themselves. Cleaned up afterwards.
func withConfiguredDaemon(
    _ sim: LiveSimFixture, topLevel: [String] = [], _ body: (DaemonProcess) async throws -> Void
) async throws {
    let daemon = try DaemonProcess(sim: sim, topLevel: topLevel)
    do {
        try await body(daemon)
    } catch {
        await daemon.shutdown()
        throw error
    }
    await daemon.shutdown()
}

extension DaemonProcess {
    /// Replaces the top-level lines (those before the first table) of the configuration file.
    func rewriteTopLevel(_ lines: [String]) throws {
        let text = try String(contentsOfFile: configPath, encoding: .utf8)
        guard let table = text.range(of: "\n[") else { return }
        try (lines.joined(separator: "\n") + String(text[table.lowerBound...])).write(
            toFile: configPath, atomically: true, encoding: .utf8)
    }
}
