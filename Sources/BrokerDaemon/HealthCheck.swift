import BrokerEngine
import NIOConcurrencyHelpers

/// What the watchdog checks: every event loop runs a task within the timeout (the server's and
/// the HTTP client's), and the refresh scheduler went round its loop within its window.
final class HealthCheck: Sendable {
    /// Each loop, as something that runs a closure on it.
    let loops: [@Sendable (@escaping @Sendable () -> Void) -> Void]
    let engine: BrokerEngine
    /// Probes still unanswered, by loop: a stuck loop gets no new probe piled onto it.
    private let pending = NIOLockedValueBox<Set<Int>>([])

    init(loops: [@Sendable (@escaping @Sendable () -> Void) -> Void], engine: BrokerEngine) {
        self.loops = loops
        self.engine = engine
    }

    /// nil when healthy, else what is wrong.
    func check(timeout: Duration, schedulerWindow: Duration) async -> String? {
        let since = engine.monotonicNow - engine.lastSchedulerPass
        if since > schedulerWindow {
            return "the refresh scheduler has not run for \(since.components.seconds) s"
        }
        for (index, loop) in loops.enumerated() {
            guard await probe(loop, index: index, timeout: timeout) else {
                return "event loop \(index) did not run a task within \(timeout)"
            }
        }
        return nil
    }

    /// A task round trip through the loop, bounded by `timeout` without depending on the loop.
    private func probe(_ loop: @Sendable (@escaping @Sendable () -> Void) -> Void, index: Int, timeout: Duration) async
        -> Bool
    {
        if pending.withLockedValue({ $0.contains(index) }) { return false }
        pending.withLockedValue { _ = $0.insert(index) }
        let slot = NIOLockedValueBox<CheckedContinuation<Bool, Never>?>(nil)
        let pending = self.pending
        let answered = await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            slot.withLockedValue { $0 = continuation }
            loop {
                pending.withLockedValue { _ = $0.remove(index) }
                slot.withLockedValue { taken in
                    defer { taken = nil }
                    return taken
                }?.resume(returning: true)
            }
            Task {
                try? await Task.sleep(for: timeout)
                slot.withLockedValue { taken in
                    defer { taken = nil }
                    return taken
                }?.resume(returning: false)
            }
        }
        return answered
    }
}
