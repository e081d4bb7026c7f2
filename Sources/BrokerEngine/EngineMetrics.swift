import BrokerCore
import CoreMetrics
import Foundation

/// The daemon's counters, through swift-metrics (a Prometheus backend in tokenbrokerd). Every
/// instrument is made once; counting on the read path is an atomic increment.
final class EngineMetrics: Sendable {
    private let refreshes: [RefreshResult: Counter]
    private let reads: [ReadOutcome: Counter]
    private let readLatency: CoreMetrics.Timer
    private let lateness: CoreMetrics.Timer
    private let accounts: [String: Gauge]

    init() {
        refreshes = Dictionary(
            uniqueKeysWithValues: RefreshResult.allCases.map {
                ($0, Counter(label: "tokenbroker_refreshes_total", dimensions: [("result", $0.rawValue)]))
            })
        reads = Dictionary(
            uniqueKeysWithValues: ReadOutcome.allCases.map {
                ($0, Counter(label: "tokenbroker_reads_total", dimensions: [("result", $0.rawValue)]))
            })
        readLatency = CoreMetrics.Timer(label: "tokenbroker_read_duration_seconds", preferredDisplayUnit: .seconds)
        lateness = CoreMetrics.Timer(label: "tokenbroker_refresh_lateness_seconds", preferredDisplayUnit: .seconds)
        accounts = Dictionary(
            uniqueKeysWithValues: ["active", "needs_reauth"].map {
                ($0, Gauge(label: "tokenbroker_accounts", dimensions: [("state", $0)]))
            })
    }

    func refreshed(_ result: RefreshResult) { refreshes[result]?.increment() }

    func read(_ outcome: ReadOutcome, nanoseconds: UInt64?) {
        reads[outcome]?.increment()
        if let nanoseconds { readLatency.recordNanoseconds(Int64(clamping: nanoseconds)) }
    }

    /// How late a refresh started against its schedule.
    func late(by seconds: TimeInterval) { lateness.recordNanoseconds(Int64(max(0, seconds) * 1e9)) }

    func accounts(active: Int, needsReauth: Int) {
        accounts["active"]?.record(active)
        accounts["needs_reauth"]?.record(needsReauth)
    }
}
