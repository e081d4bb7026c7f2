import CSystemd

#if canImport(Glibc)
    import Glibc
#endif

/// `sd_notify(3)`: tells the service manager about start-up, status, liveness, reloads and
/// shutdown. Every call is a no-op (returning false) when `NOTIFY_SOCKET` is not set, so the
/// daemon calls it unconditionally.
package enum SystemdNotifier {
    /// Whether a service manager listens (`NOTIFY_SOCKET` is set). The variable is left in the
    /// environment, because the daemon notifies for its whole life.
    package static var isAvailable: Bool {
        guard let value = getenv("NOTIFY_SOCKET") else { return false }
        return value.pointee != 0
    }

    /// Sends newline-separated `KEY=value` assignments. True if the message was sent.
    @discardableResult
    package static func notify(_ assignments: [String]) -> Bool {
        let message = assignments.joined(separator: "\n")
        return sd_notify(0, message) > 0
    }

    /// `READY=1`, with a status line.
    @discardableResult
    package static func ready(status: String? = nil) -> Bool {
        notify(["READY=1"] + (status.map { ["STATUS=" + oneLine($0)] } ?? []))
    }

    /// `STATUS=`: the line `systemctl status` shows.
    @discardableResult
    package static func status(_ text: String) -> Bool { notify(["STATUS=" + oneLine(text)]) }

    /// `WATCHDOG=1`: call only after checking that the daemon is healthy.
    @discardableResult
    package static func watchdog() -> Bool { notify(["WATCHDOG=1"]) }

    /// `RELOADING=1` with `MONOTONIC_USEC=` (which systemd 253 and later require for
    /// Type=notify-reload); follow it with `ready()` once the new configuration is in force
    /// or has been refused.
    @discardableResult
    package static func reloading(status: String? = nil) -> Bool {
        notify(
            ["RELOADING=1", "MONOTONIC_USEC=\(monotonicMicroseconds())"]
                + (status.map { ["STATUS=" + oneLine($0)] } ?? []))
    }

    /// `STOPPING=1`: the daemon has begun its shutdown.
    @discardableResult
    package static func stopping(status: String? = nil) -> Bool {
        notify(["STOPPING=1"] + (status.map { ["STATUS=" + oneLine($0)] } ?? []))
    }

    /// The watchdog interval the service manager expects pings within (`WATCHDOG_USEC`, checked
    /// against `WATCHDOG_PID`), or nil when no watchdog is configured for this process.
    package static func watchdogInterval() -> Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
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
