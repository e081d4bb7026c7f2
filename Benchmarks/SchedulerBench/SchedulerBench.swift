import BrokerCore
import BrokerEngine
import CShims
import Foundation

/// `scheduler-bench [ACCOUNTS]`: the refresh machine's own CPU per refresh at scale, with no I/O.
/// The executor's part is played in process, answering every job at once, so that what is timed
/// is the machine alone: handing out due jobs, applying their results, installing them.
///
/// Two scenarios, each over ACCOUNTS accounts (default 100,000) with every scope:
/// - `overdue`: every token past its refresh point at start (a daemon that was down for longer
///   than the tokens live): the whole backlog is due at once;
/// - `window`: tokens obtained together, refreshed over the jitter window as the clock advances
///   in steps of 100 ms (the steady state of a fleet enrolled at one time).
///
/// Prints, per scenario, the jobs run and the machine's CPU time per job (thread CPU time), and
/// what the machine and the read cache (the daemon's `ServedCache`, fed the machine's `publish`
/// effects) hold in malloc's heap per account, the secrets' bytes aside (they are in the slab).
@main
struct SchedulerBench {
    static let lifetime: TimeInterval = 3600

    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        let accounts = arguments.first.flatMap { Int($0) } ?? 100_000
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var seedRandom = SystemRandomNumberGenerator()
        let random: () -> Double = { Double.random(in: 0..<1, using: &seedRandom) }

        for scenario in ["overdue", "window"] {
            let heapBefore = heapInUse()
            var machine = RefreshMachine(realms: ["live"])
            let cache = ServedCache()
            func publish(_ effects: [Effect]) {
                for effect in effects {
                    switch effect {
                    case .publish(let key, let credential):
                        cache.update(.credential(key, credential.map { ServedCredential(key, $0) }))
                    case .publishAccount(let name, let view): cache.update(.account(name, view))
                    default: break
                    }
                }
            }
            let obtained = scenario == "overdue" ? t0.addingTimeInterval(-lifetime) : t0
            for index in 0..<accounts {
                let name = AccountName(rawValue: "user\(index)@example.com")!
                let tokens = Scope.allCases.map { scope in
                    AccessToken(
                        value: Secret(String(repeating: "t", count: 64)), scope: scope, obtainedAt: obtained,
                        expiresAt: obtained.addingTimeInterval(lifetime))
                }
                let seed = AccountSeed(
                    name: name, realm: "live", login: name.rawValue, refreshToken: Secret("rt-\(index)"),
                    password: nil, ticketMethod: .oauth, accessTokens: tokens, cookies: nil)
                publish(machine.add(seed, now: t0, random: random, fromStore: true))
            }
            let heapAdded = heapInUse()
            var now = scenario == "overdue" ? t0 : t0.addingTimeInterval(lifetime * 0.65)
            let end = scenario == "overdue" ? t0.addingTimeInterval(600) : t0.addingTimeInterval(lifetime * 0.85)
            var jobs = 0
            let start = threadCPU()
            while now < end {
                let due = machine.due(now: now, random: random)
                for first in due {
                    // A job may go on with a next step (a skypetoken after its skype.com token).
                    var next: Job? = first
                    while let job = next {
                        next = nil
                        jobs += 1
                        for outcome in outcomes(job, now: now) {
                            let effects = machine.apply(outcome, now: now, random: random)
                            publish(effects)
                            for case .run(let more) in effects { next = more }
                        }
                    }
                }
                // The next call at once while work is due (as the executor does when a job
                // finishes); when nothing is, the clock's next step (the window) or the end.
                if due.isEmpty {
                    if scenario == "overdue" { break }
                    now = now.addingTimeInterval(0.1)
                }
            }
            let cpu = threadCPU() - start
            let perJob = jobs > 0 ? cpu / Double(jobs) * 1e6 : 0
            print(
                String(
                    format: "%@: %d accounts, %d jobs, %.2f s CPU, %.1f µs per job", scenario, accounts, jobs, cpu,
                    perJob))
            let heapAfter = heapInUse()
            print(
                String(
                    format: "%@: malloc in use per account (machine and cache): %.0f bytes loaded, %.0f bytes after",
                    scenario, Double(heapAdded - heapBefore) / Double(accounts),
                    Double(heapAfter - heapBefore) / Double(accounts)))
            withExtendedLifetime((machine, cache)) {}
        }
    }

    static func heapInUse() -> Int {
        var inUse: UInt64 = 0
        var free: UInt64 = 0
        var mapped: UInt64 = 0
        tokenbroker_heap_usage(&inUse, &free, &mapped)
        return Int(inUse)
    }

    /// What the provider and the store answer: a new token, written at once.
    static func outcomes(_ job: Job, now: Date) -> [Outcome] {
        let value = Secret(String(repeating: "n", count: 64))
        switch job.step {
        case .refreshScope(let scope, _):
            let token = AccessToken(
                value: value, scope: scope, obtainedAt: now, expiresAt: now.addingTimeInterval(lifetime))
            return [
                .granted(job, TokenGrant(accessToken: token, refreshToken: nil, userID: nil)),
                .persisted(job.key.account, failure: nil),
            ]
        case .skypetoken:
            let credential = Credential(value: value, obtainedAt: now, expiresAt: now.addingTimeInterval(lifetime))
            return [.obtained(job, credential), .persisted(job.key.account, failure: nil)]
        case .persist:
            return [.persisted(job.key.account, failure: nil)]
        default:
            return [.failed(job, .transient("not simulated"))]
        }
    }

    static func threadCPU() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
