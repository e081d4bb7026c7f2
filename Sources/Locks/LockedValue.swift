#if canImport(Glibc)
    import Glibc
#endif

/// A value behind a lock: `Synchronization.Mutex`'s interface, on a pthread mutex.
///
/// On Linux, `Mutex` waits for and hands over a contended lock inside the standard library (a
/// priority-inheritance futex, in code built without ThreadSanitizer), so ThreadSanitizer never
/// sees the lock taken: under contention it reports every access the lock guards as a race, and
/// so cannot check anything kept behind a lock. It does see pthread mutexes. The daemon's code and
/// livesim's use this type, so that the TSan stage checks their locking. Uncontended, taking and
/// releasing cost one atomic operation each, as `Mutex`'s do.
package final class LockedValue<Value: ~Copyable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let value: UnsafeMutablePointer<Value>

    package init(_ initialValue: consuming sending Value) {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        value = .allocate(capacity: 1)
        value.initialize(to: initialValue)
    }

    deinit {
        value.deinitialize(count: 1)
        value.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with the value, the lock held.
    package func withLock<Result: ~Copyable, E: Error>(
        _ body: (inout sending Value) throws(E) -> sending Result
    ) throws(E) -> sending Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value.pointee)
    }
}
