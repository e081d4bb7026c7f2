/// A type-erased monotonic clock: elapsed time since an origin, and sleep. The engine takes one
/// so tests can drive time without real sleeps.
package struct MonotonicClock: Sendable {
    private let elapsed: @Sendable () -> Duration
    private let sleeper: @Sendable (Duration) async throws -> Void

    package init<C: Clock>(_ clock: C) where C.Duration == Duration, C: Sendable {
        let origin = clock.now
        elapsed = { origin.duration(to: clock.now) }
        sleeper = { try await clock.sleep(for: $0) }
    }

    package static var continuous: MonotonicClock { MonotonicClock(ContinuousClock()) }

    /// Time since the clock was wrapped.
    package var now: Duration { elapsed() }

    package func sleep(for duration: Duration) async throws { try await sleeper(duration) }
}
