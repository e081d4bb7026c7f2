import BrokerCore

/// The reads waiting for an attempt on a credential, by key. Kept under the machine's lock, so
/// that the machine's `deliver` effect hands its result to exactly the reads that waited: each
/// read gets the result itself and looks nothing up again.
struct WaiterTable: ~Copyable {
    typealias Resume = @Sendable () -> Void
    private var waiting: [CredentialKey: [UInt64: CheckedContinuation<AttemptResult?, Never>]] = [:]
    private var nextID: UInt64 = 0

    mutating func makeID() -> UInt64 {
        nextID += 1
        return nextID
    }

    mutating func add(_ key: CredentialKey, id: UInt64, _ continuation: CheckedContinuation<AttemptResult?, Never>) {
        waiting[key, default: [:]][id] = continuation
    }

    /// Removes one read (its time ran out, or it was cancelled); nil if it was already handed a result.
    mutating func remove(_ key: CredentialKey, id: UInt64) -> CheckedContinuation<AttemptResult?, Never>? {
        let continuation = waiting[key]?.removeValue(forKey: id)
        if waiting[key]?.isEmpty == true { waiting[key] = nil }
        return continuation
    }

    /// Takes every read waiting on `key`, each to be resumed with `result` outside the lock.
    mutating func take(_ key: CredentialKey, _ result: AttemptResult) -> [Resume] {
        guard let readers = waiting.removeValue(forKey: key) else { return [] }
        return readers.values.map { continuation in { continuation.resume(returning: result) } }
    }
}
