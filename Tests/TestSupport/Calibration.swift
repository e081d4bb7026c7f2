import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Margins for timing assertions, measured instead of guessed.
///
/// Once per test process, on first use, a fixed amount of work is timed: a CPU loop and
/// `roundTrips` request-and-answer exchanges between two threads over a socketpair (the
/// scheduler's wake-ups are what a loaded machine delays most). The work runs five times and the
/// median is compared with `baseline`, the same work on an idle 2-core CI machine. The ratio,
/// never below 1, is `slowdown`: timing bounds are written for an idle machine and multiplied
/// by it, so they stay strict where the machine is idle and widen only as much as measured
/// load requires. `TOKENBROKER_TEST_SLOWDOWN` overrides the measurement (for instance `1` to
/// hold a loaded machine to the idle bounds).
public enum Calibration {
    /// The reference: the median time of one round of `work()` on an idle machine.
    public static let baseline: Duration = .milliseconds(40)
    /// Round trips per round.
    static let roundTrips = 2000
    /// Never below 1; capped, so that a machine too busy to time anything fails loudly instead
    /// of passing bounds that no longer mean anything.
    public static let cap = 5.0

    /// The measured median round, and the slowdown it gives, measured once.
    public static let measurement: (median: Duration, slowdown: Double) = measure()

    /// A new measurement, for a test that missed a bound and asks whether the machine is loaded
    /// right now.
    public static func measure() -> (median: Duration, slowdown: Double) {
        if let forced = ProcessInfo.processInfo.environment["TOKENBROKER_TEST_SLOWDOWN"].flatMap(Double.init) {
            print("calibration: slowdown forced to \(forced)")
            return (.zero, max(1, forced))
        }
        var rounds: [Duration] = []
        for _ in 0..<5 {
            let start = ContinuousClock.now
            work()
            rounds.append(ContinuousClock.now - start)
        }
        let median = rounds.sorted()[rounds.count / 2]
        let slowdown = min(cap, max(1, median / baseline))
        print(
            "calibration: rounds \(rounds.map { "\($0)" }.joined(separator: ", ")); median \(median) against a baseline of \(baseline): slowdown \(String(format: "%.2f", slowdown))"
        )
        return (median, slowdown)
    }

    /// How many times slower than an idle machine this one runs now, from 1 to `cap`.
    public static var slowdown: Double { measurement.slowdown }

    /// `bound`, as written for an idle machine, scaled by the measured slowdown.
    public static func margin(_ bound: Duration) -> Duration { bound * slowdown }

    /// One round of the fixed work.
    static func work() {
        // CPU: a multiply-xorshift chain the optimiser cannot remove.
        var x: UInt64 = 0x9E37_79B9_7F4A_7C15
        for i in 0..<2_000_000 { x = (x ^ (x >> 29)) &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(i) }
        if x == 42 { print("") }

        // Wake-ups: ping-pong of one byte between two threads.
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            return
        }
        let (a, b) = (pair[0], pair[1])
        let echo = Thread {
            var byte: UInt8 = 0
            while recv(b, &byte, 1, 0) == 1 {
                if send(b, &byte, 1, Int32(MSG_NOSIGNAL)) != 1 { break }
            }
        }
        echo.start()
        var byte: UInt8 = 1
        for _ in 0..<roundTrips {
            guard send(a, &byte, 1, Int32(MSG_NOSIGNAL)) == 1, recv(a, &byte, 1, 0) == 1 else { break }
        }
        shutdown(a, Int32(SHUT_RDWR))
        close(a)
        // The echo thread sees end-of-file and returns; its end closes `b`.
        while !echo.isFinished { usleep(100) }
        close(b)
    }
}
