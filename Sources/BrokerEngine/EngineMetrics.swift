import BrokerCore
import CoreMetrics
import Foundation
import Synchronization

/// The daemon's counters, through swift-metrics (a Prometheus backend in tokenbrokerd). Every
/// instrument is made once; counting on the read path is an atomic increment.
final class EngineMetrics: Sendable {
    private let refreshes: [RefreshResult: Counter]
    let reads = ReadCounts()
    let readDurations = ReadDurations()
    private let lateness: CoreMetrics.Timer
    private let accounts: [String: Gauge]

    init() {
        refreshes = Dictionary(
            uniqueKeysWithValues: RefreshResult.allCases.map {
                ($0, Counter(label: "tokenbroker_refreshes_total", dimensions: [("result", $0.rawValue)]))
            })
        lateness = CoreMetrics.Timer(label: "tokenbroker_refresh_lateness_seconds", preferredDisplayUnit: .seconds)
        accounts = Dictionary(
            uniqueKeysWithValues: ["active", "needs_reauth"].map {
                ($0, Gauge(label: "tokenbroker_accounts", dimensions: [("state", $0)]))
            })
    }

    func refreshed(_ result: RefreshResult) { refreshes[result]?.increment() }

    func read(_ outcome: ReadOutcome, nanoseconds: UInt64?) {
        reads.count(outcome)
        if let nanoseconds { readDurations.record(nanoseconds: nanoseconds) }
    }

    /// How late a refresh started against its schedule.
    func late(by seconds: TimeInterval) { lateness.recordNanoseconds(Int64(max(0, seconds) * 1e9)) }

    func accounts(active: Int, needsReauth: Int) {
        accounts["active"]?.record(active)
        accounts["needs_reauth"]?.record(needsReauth)
    }
}

/// `tokenbroker_reads_total`: reads on the socket by how they ended. Counted on the server's
/// thread for every read, so kept apart from swift-metrics like `ReadDurations`: one relaxed
/// atomic add, where a swift-metrics counter goes through two existential handlers first.
package final class ReadCounts: Sendable {
    private let counts: InlineArray<4, Atomic<Int>> = InlineArray { _ in Atomic(0) }

    func count(_ outcome: ReadOutcome) {
        counts[Self.index(outcome)].add(1, ordering: .relaxed)
    }

    private static func index(_ outcome: ReadOutcome) -> Int {
        switch outcome {
        case .fresh: 0
        case .refreshed: 1
        case .denied: 2
        case .error: 3
        }
    }

    /// The counter in Prometheus' text format.
    package func emit(into buffer: inout [UInt8]) {
        let name = "tokenbroker_reads_total"
        var text = "# TYPE \(name) counter\n"
        for outcome in ReadOutcome.allCases {
            text += "\(name){result=\"\(outcome.rawValue)\"} \(counts[Self.index(outcome)].load(ordering: .relaxed))\n"
        }
        buffer.append(contentsOf: text.utf8)
    }
}

/// `tokenbroker_read_duration_seconds`: how long each read on the socket took, recorded for every
/// read on the server's thread. A token read answered from memory counts from the moment the
/// server's loop woke up to its request (a read the loop takes up after others of the same
/// wake-up counts their time too) until its answer is written; a read that goes through the
/// service (a refresh, another credential) from when the loop routed it until its answer.
///
/// Kept apart from swift-metrics: recording is two relaxed atomic adds, where swift-prometheus's
/// histogram takes a lock and compares against every bucket. Its buckets fit a read from memory
/// (microseconds) as well as one that waits for a refresh.
package final class ReadDurations: Sendable {
    /// Upper bounds of the buckets, in nanoseconds, and as the `le` labels say them in seconds.
    static let bounds: [UInt64] = [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000, 10_000_000_000]
    static let labels = ["0.00001", "0.0001", "0.001", "0.01", "0.1", "1", "10"]

    /// Reads per bucket (not cumulative); the last is over every bound.
    private let counts: InlineArray<8, Atomic<Int>> = InlineArray { _ in Atomic(0) }
    private let sumNanoseconds = Atomic<UInt64>(0)

    func record(nanoseconds: UInt64) {
        var index = 0
        while index < Self.bounds.count, nanoseconds > Self.bounds[index] { index += 1 }
        counts[index].add(1, ordering: .relaxed)
        sumNanoseconds.add(nanoseconds, ordering: .relaxed)
    }

    /// The histogram in Prometheus' text format, cumulative as it wants.
    package func emit(into buffer: inout [UInt8]) {
        let name = "tokenbroker_read_duration_seconds"
        var text = "# TYPE \(name) histogram\n"
        var total = 0
        for index in 0..<Self.bounds.count {
            total += counts[index].load(ordering: .relaxed)
            text += "\(name)_bucket{le=\"\(Self.labels[index])\"} \(total)\n"
        }
        total += counts[Self.bounds.count].load(ordering: .relaxed)
        text += "\(name)_bucket{le=\"+Inf\"} \(total)\n"
        text += "\(name)_sum \(Double(sumNanoseconds.load(ordering: .relaxed)) / 1e9)\n"
        text += "\(name)_count \(total)\n"
        buffer.append(contentsOf: text.utf8)
    }
}
