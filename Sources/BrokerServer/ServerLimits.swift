/// Limits on what a client may send.
package struct ServerLimits: Sendable {
    package var maxHeaderBytes = 8 * 1024
    package var maxBodyBytes = 64 * 1024
    /// A connection that sends nothing for this long is closed.
    package var idleTimeout: Duration = .seconds(10) { didSet { idleNanoseconds = idleTimeout.nanoseconds } }
    /// A request must arrive whole, head and body, within this long of its first byte; else the
    /// connection is closed. The idle timeout restarts on every byte, so without this a client
    /// sending a byte now and then could hold a connection for ever.
    package var requestTimeout: Duration = .seconds(5) {
        didSet { requestNanoseconds = requestTimeout.nanoseconds }
    }
    /// The two timeouts in nanoseconds, kept with them: every connection needs them, and a
    /// `Duration`'s conversion is 128-bit arithmetic.
    private(set) var idleNanoseconds: UInt64 = 0
    private(set) var requestNanoseconds: UInt64 = 0
    /// Connections open at once. One more is answered 503 `temporarily_unavailable` and closed at
    /// once, so that the daemon's memory and descriptors stay bounded.
    package var maxConnections = 16384
    /// How often an event stream (`GET /v1/events`) gets a heartbeat comment.
    package var eventHeartbeat: Duration = .seconds(15)

    package init() {
        idleNanoseconds = idleTimeout.nanoseconds
        requestNanoseconds = requestTimeout.nanoseconds
    }
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        // Capped at about 31 years, so that adding it to a monotonic time cannot overflow.
        return UInt64(min(max(0, seconds), 1_000_000_000)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}
