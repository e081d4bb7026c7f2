import BrokerCore
import Locks

/// The subscribers of `BrokerEngine.events()`. Each call adds one; an event goes to every
/// subscriber, in the order it was published (the engine publishes under the machine's lock).
///
/// A subscriber's stream buffers what it has not taken yet. The socket server is the one
/// subscriber in the daemon: it takes each event at once and bounds what each of its readers may
/// fall behind (`GET /v1/events`), so nothing piles up here.
final class EventHub: Sendable {
    private let subscribers = LockedValue<(next: Int, continuations: [Int: AsyncStream<ServiceEvent>.Continuation])>(
        (0, [:]))

    func subscribe() -> AsyncStream<ServiceEvent> {
        let (stream, continuation) = AsyncStream<ServiceEvent>.makeStream(bufferingPolicy: .unbounded)
        let id = subscribers.withLock { state in
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.continuations.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: ServiceEvent) {
        let continuations = subscribers.withLock { Array($0.continuations.values) }
        for continuation in continuations { continuation.yield(event) }
    }
}
