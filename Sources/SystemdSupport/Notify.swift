import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// `sd_notify(3)`: tells the service manager about start-up, status, liveness, reloads and
/// shutdown. Every call is a no-op (returning false) when `NOTIFY_SOCKET` is not set, so the
/// daemon calls it unconditionally.
///
/// Each call takes an optional `socket`: nil (the daemon's case) sends through `sd_notify` to the
/// `NOTIFY_SOCKET` of the process environment; a path sends the same datagram there, so that
/// tests need not change the environment of their process.
package enum SystemdNotifier {
    /// Whether a service manager listens (`NOTIFY_SOCKET` is set). The variable is left in the
    /// environment, because the daemon notifies for its whole life.
    package static var isAvailable: Bool { isAvailable(environment: nil) }

    /// `isAvailable` for the given environment (nil: the process's).
    package static func isAvailable(environment: [String: String]?) -> Bool {
        guard let value = SystemdEnvironment.value("NOTIFY_SOCKET", in: environment) else { return false }
        return !value.isEmpty
    }

    /// Sends newline-separated `KEY=value` assignments. True if the message was sent.
    @discardableResult
    package static func notify(_ assignments: [String], socket: String? = nil) -> Bool {
        let message = assignments.joined(separator: "\n")
        guard let socket else { return sd_notify(0, message) > 0 }
        return sendDatagram(message, to: socket)
    }

    /// One datagram to an AF_UNIX socket path (a leading `@`: the abstract namespace), as
    /// `sd_notify` sends it.
    static func sendDatagram(_ message: String, to path: String) -> Bool {
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        var address = sockaddr_un()
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in bytes.enumerated() { raw[i] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (bytes[0] == 0 ? 0 : 1))
        let payload = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                payload.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), address, length) }
            }
        }
        return sent == payload.count
    }

    /// `READY=1`, with a status line.
    @discardableResult
    package static func ready(status: String? = nil, socket: String? = nil) -> Bool {
        notify(["READY=1"] + (status.map { ["STATUS=" + oneLine($0)] } ?? []), socket: socket)
    }

    /// `STATUS=`: the line `systemctl status` shows.
    @discardableResult
    package static func status(_ text: String, socket: String? = nil) -> Bool {
        notify(["STATUS=" + oneLine(text)], socket: socket)
    }

    /// `WATCHDOG=1`: call only after checking that the daemon is healthy.
    @discardableResult
    package static func watchdog(socket: String? = nil) -> Bool { notify(["WATCHDOG=1"], socket: socket) }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (which systemd 253 and later require for
    /// Type=notify-reload); follow it with `ready()` once the new configuration is in force
    /// or has been refused.
    @discardableResult
    package static func reloading(status: String? = nil, socket: String? = nil) -> Bool {
        notify(
            ["RELOADING=1", "MONOTONIC_USEC=\(monotonicMicroseconds())"]
                + (status.map { ["STATUS=" + oneLine($0)] } ?? []), socket: socket)
    }

    /// `STOPPING=1`: the daemon has begun its shutdown.
    @discardableResult
    package static func stopping(status: String? = nil, socket: String? = nil) -> Bool {
        notify(["STOPPING=1"] + (status.map { ["STATUS=" + oneLine($0)] } ?? []), socket: socket)
    }

    /// The watchdog interval the service manager expects pings within (`WATCHDOG_USEC`, checked
    /// against `WATCHDOG_PID`), or nil when no watchdog is configured for this process. The rules
    /// are `sd_watchdog_enabled(3)`'s; `environment` nil reads the process's.
    package static func watchdogInterval(environment: [String: String]? = nil, pid: pid_t = getpid()) -> Duration? {
        guard let raw = SystemdEnvironment.value("WATCHDOG_USEC", in: environment), let usec = UInt64(raw), usec > 0
        else { return nil }
        if let owner = SystemdEnvironment.value("WATCHDOG_PID", in: environment) {
            guard let owner = pid_t(owner), owner > 0, owner == pid else { return nil }
        }
        return .microseconds(Int64(clamping: usec))
    }

    /// CLOCK_MONOTONIC in microseconds, as systemd counts it.
    package static func monotonicMicroseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1_000
    }

    /// A notify message is line-based: a status must stay on one line.
    static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}

/// Reads a variable from an explicit environment or, when none is given, the process's.
enum SystemdEnvironment {
    static func value(_ name: String, in environment: [String: String]?) -> String? {
        if let environment { return environment[name] }
        return getenv(name).map { String(cString: $0) }
    }
}
