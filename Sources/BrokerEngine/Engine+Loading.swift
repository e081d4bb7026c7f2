import BrokerCore
import Foundation
import Locks
import Logging
import Synchronization

/// How far the start-up load has come.
struct LoadProgress {
    /// The last store row added to the machine.
    var afterID: Int64 = 0
    var started: Duration = .zero
}

/// Loading the store after start. The socket serves from the first moment: a background task
/// adds the accounts a batch at a time, and a read (or status, or on-demand request) of an
/// account the load has not reached yet loads that account first. Listing every account waits
/// for the load to finish; counting them asks the store. Every account's schedule is known once
/// the background load is done, a few seconds after start even with 100,000 accounts.
extension BrokerEngine {
    /// Whether every stored account is in the machine. Read without the load's lock (which a
    /// batch holds while it reads the store), so that the server's thread never waits for one.
    var loadComplete: Bool { loadDone.load(ordering: .acquiring) }

    /// Loads `name` now if the background load has not reached it.
    func ensureLoaded(_ name: AccountName) throws(BrokerError) {
        if loadComplete || locked.withLock({ $0.machine.accounts[name] != nil }) { return }
        try loading.withLock { progress throws(BrokerError) in
            guard !loadComplete, !locked.withLock({ $0.machine.accounts[name] != nil }) else { return }
            let seed: AccountSeed?
            do { seed = try persistence.loadAccount(name) } catch { throw Self.brokerError(error) }
            if let seed { add([seed]) }
        }
    }

    /// Loads whatever the background load has not reached yet.
    func ensureAllLoaded() throws(BrokerError) {
        while try !loadNextBatch() {}
    }

    /// The background load: a batch, then a turn for everything else, until every account is in.
    func loadInBackground() async {
        while !locked.withLock({ $0.machine.stopping }) {
            do {
                if try loadNextBatch() { return }
                await Task.yield()
            } catch {
                logger.error(
                    "cannot load the accounts; trying again in a second",
                    metadata: ["broker.error": "\(error.code.rawValue)", "broker.reason": "\(error.message)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Adds the next batch to the machine; true once every account is in.
    @discardableResult
    func loadNextBatch() throws(BrokerError) -> Bool {
        try loading.withLock { progress throws(BrokerError) -> Bool in
            if loadComplete { return true }
            let batch: (seeds: [AccountSeed], lastID: Int64?)
            do {
                batch = try persistence.loadAccounts(afterID: progress.afterID, limit: loadBatchSize)
            } catch {
                throw Self.brokerError(error)
            }
            add(batch.seeds)
            if let last = batch.lastID { progress.afterID = last }
            if batch.lastID == nil || batch.seeds.count < loadBatchSize {
                loadDone.store(true, ordering: .releasing)
                cache.update(.loaded)
                let elapsed = clock.now - progress.started
                logger.info(
                    "accounts loaded",
                    metadata: [
                        "broker.accounts": "\(locked.withLock { $0.machine.accounts.count })",
                        "broker.load_ms":
                            "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
                    ])
            }
            return loadComplete
        }
    }

    /// Adds stored accounts the machine does not have yet (one enrolled or loaded on demand
    /// meanwhile is newer than its stored row, and is kept).
    private func add(_ seeds: [AccountSeed]) {
        guard !seeds.isEmpty else { return }
        let now = wallClock()
        let random = self.random
        carryOut(
            update { machine in
                var effects: [Effect] = []
                for seed in seeds where machine.accounts[seed.name] == nil {
                    effects += machine.add(seed, now: now, random: random, fromStore: true)
                }
                return effects
            })
        wakeup.signal()
    }
}
