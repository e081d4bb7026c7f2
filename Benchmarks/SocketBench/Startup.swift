import ArgumentParser
import CEpoll
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `socket-bench startup -- COMMAND...`: starts a daemon and times it from exec to readiness,
/// two ways: the first time a line of its log holds the ready text, and the first time the socket
/// answers the probe request with 200. Leaves the daemon running and prints its pid and RSS.
struct Startup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Starts a daemon, times exec → ready log line and exec → first 200 on the socket; leaves it running.")

    @Option(help: "The socket the daemon serves.")
    var socket: String

    @Option(help: "The request that proves readiness.")
    var probePath = "/v1/health"

    @Option(help: "The daemon's standard output and error go to this file, which is watched for the ready text.")
    var log: String

    @Option(help: "The text of the log line that says the daemon is ready.")
    var readyText = "tokenbrokerd ready"

    @Option(help: "Give up after this many seconds (the daemon is then killed).")
    var timeout = 120.0

    @Argument(parsing: .postTerminator, help: "The daemon's command line.")
    var command: [String]

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        guard !command.isEmpty else { throw ValidationError("give the daemon's command after --") }
        unlink(socket)
        let logFD = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard logFD >= 0 else { throw ValidationError("cannot open \(log)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_adddup2(&actions, logFD, 1)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        let argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let started = monoNanos()
        let rc = posix_spawnp(&pid, command[0], &actions, nil, argv, environ)
        posix_spawn_file_actions_destroy(&actions)
        close(logFD)
        guard rc == 0 else { throw ValidationError("cannot start \(command[0]): \(String(cString: strerror(rc)))") }

        var readyAt: UInt64?
        var answeredAt: UInt64?
        var seen = 0
        let ready = Array(readyText.utf8)
        let request = Array("GET \(probePath) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        let deadline = started + UInt64(timeout * 1e9)
        while readyAt == nil || answeredAt == nil {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                print("startup: the daemon exited (status \(status)) before it was ready; its log:")
                print((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
                throw ExitCode(1)
            }
            if readyAt == nil, let text = try? Data(contentsOf: URL(fileURLWithPath: log)), text.count > seen {
                if let range = text.range(of: Data(ready), in: max(0, seen - ready.count)..<text.count) {
                    _ = range
                    readyAt = monoNanos()
                }
                seen = text.count
            }
            if answeredAt == nil, Self.probe(socket, request) == 200 { answeredAt = monoNanos() }
            if monoNanos() > deadline {
                kill(pid, SIGKILL)
                print("startup: not ready after \(timeout) s")
                throw ExitCode(1)
            }
            usleep(1000)
        }
        func ms(_ t: UInt64) -> String { String(format: "%.1f", Double(t - started) / 1e6) }
        let rss = Self.status(pid, "VmRSS")
        print(
            "startup: exec → log line \"\(readyText)\" \(ms(readyAt!)) ms; exec → first 200 on \(probePath) \(ms(answeredAt!)) ms; RSS \(rss / 1024) MB"
        )
        print("RESULT label=startup pid=\(pid) ready_ms=\(ms(readyAt!)) health_ms=\(ms(answeredAt!)) rss_kb=\(rss)")
    }

    /// One blocking request; the status code, or nil when nothing answered.
    static func probe(_ path: String, _ request: [UInt8]) -> Int? {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes.prefix(raw.count - 1))
            raw[min(bytes.count, raw.count - 1)] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return nil }
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count
        else { return nil }
        var head = [UInt8](repeating: 0, count: 16)
        let n = head.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 16, Int32(MSG_WAITALL)) }
        guard n >= 12 else { return nil }
        return Int(String(decoding: head[9..<12], as: UTF8.self))
    }

    /// A `kB` field of /proc/PID/status.
    static func status(_ pid: pid_t, _ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
