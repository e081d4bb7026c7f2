import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

/// A small deterministic generator, so a failing run can be replayed from its printed seed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// SIGKILL during refresh storms, then restart. Kills per mode come from TOKENBROKER_CRASH_KILLS
/// (25 by default, 50 in all; scripts/crash-soak.sh runs more), the seed from
/// TOKENBROKER_CRASH_SEED (printed either way).
@Suite("Crash safety: SIGKILL during refresh storms", .serialized)
struct CrashTests {
    static let kills = Int(ProcessInfo.processInfo.environment["TOKENBROKER_CRASH_KILLS"] ?? "") ?? 25
    static let accounts = ["alice@example.com", "k1@example.com", "k2@example.com"]

    static func seed(_ mode: String) -> UInt64 {
        let seed =
            UInt64(ProcessInfo.processInfo.environment["TOKENBROKER_CRASH_SEED"] ?? "")
            ?? UInt64.random(in: 1...UInt64.max >> 1)
        print("crash test (\(mode)): seed \(seed), \(kills) kills; replay with TOKENBROKER_CRASH_SEED=\(seed)")
        return seed
    }

    /// Every fifth kill lands in the window on purpose: livesim rotates the token and then never
    /// answers, and the daemon is killed while it waits.
    static func killInWindow(_ sim: LiveSimFixture, _ daemon: DaemonProcess) async throws {
        let applied = (try await sim.counters()["faults_injected"] as? [String: Int])?["token"] ?? 0
        try await sim.addFault(#"{"endpoint":"token","kind":"hang","after_processing":true,"count":1}"#)
        for _ in 0..<100 {
            if ((try await sim.counters()["faults_injected"] as? [String: Int])?["token"] ?? 0) > applied { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        await daemon.crash()
        _ = try await sim.control(.DELETE, "faults")
    }

    static func enrollAll(_ sim: LiveSimFixture, _ daemon: DaemonProcess) async throws {
        for login in accounts.dropFirst() {
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"\#(login)","password":"x"}"#)
        }
        for login in accounts { try await daemon.importAccount(login, sim: sim) }
    }

    @Test("rotate (grace 10 s): after every restart every account still refreshes; no family revoked, no needs_reauth")
    func rotate() async throws {
        var random = SeededGenerator(state: Self.seed("rotate"))
        try await withBroker(
            sim: {
                $0.tokenLifetime = 3
                $0.rotation = .rotate
                $0.rotationGrace = 10
            }, refresh: ["safety_margin = 1", "jitter = 0.2"]
        ) { sim, daemon in
            try await Self.enrollAll(sim, daemon)
            for kill in 0..<Self.kills {
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...1_200, using: &random)))
                if kill % 5 == 4 { try await Self.killInWindow(sim, daemon) } else { await daemon.crash() }
                try await daemon.start()
                for login in Self.accounts {
                    let response = try await daemon.token(login, scope: ["skype", "ssl", "contacts"][kill % 3])
                    #expect(response.status == 200, "kill \(kill), \(login): \(response.body)")
                }
            }
            // Every scope of every account refreshes after the last restart.
            let before = try await sim.counters()["refreshes"] as? Int ?? 0
            try await Task.sleep(for: .seconds(4))
            #expect((try await sim.counters()["refreshes"] as? Int ?? 0) >= before + 3 * 5)
            for login in Self.accounts {
                let status = try await daemon.get("/v1/accounts/\(login)")
                #expect(status.json["state"] as? String == "active", "\(login): \(status.body)")
            }
            let counters = try await sim.counters()
            #expect(counters["revoked_families"] as? Int == 0)
            #expect(counters["refresh_token_reuse"] as? Int == 0)
            print(
                "crash test (rotate): \(Self.kills) kills; \(counters["rotated_grace_uses"] as? Int ?? 0) restarts reused a refresh token within the grace period"
            )
        }
    }

    @Test(
        "strict: a kill between the server's rotation and the commit ends in needs_reauth with a reason, never a retry loop or a second reuse"
    )
    func strict() async throws {
        var random = SeededGenerator(state: Self.seed("strict"))
        try await withBroker(
            sim: {
                $0.tokenLifetime = 3
                $0.rotation = .strict
            }, refresh: ["safety_margin = 1", "jitter = 0.2"]
        ) { sim, daemon in
            try await Self.enrollAll(sim, daemon)
            var inWindow = 0
            var forced = 0
            for kill in 0..<Self.kills {
                try await Task.sleep(for: .milliseconds(Int.random(in: 100...1_200, using: &random)))
                let reusesBefore = try await sim.counters()["refresh_token_reuse"] as? Int ?? 0
                if kill % 5 == 4 {
                    try await Self.killInWindow(sim, daemon)
                    forced += 1
                } else {
                    await daemon.crash()
                }
                try await daemon.start()
                try await Task.sleep(for: .milliseconds(400))
                // Accounts whose rotated token was lost: they must be needs_reauth with a reason.
                for login in Self.accounts {
                    let status = try await daemon.get("/v1/accounts/\(login)")
                    guard status.json["state"] as? String == "needs_reauth" else { continue }
                    #expect((status.json["state_reason"] as? String)?.contains("revoked") == true, "\(status.body)")
                    let read = try await daemon.token(login, scope: "skype")
                    #expect(read.errorCode == "needs_reauth")
                    // No retry loop: no further token requests for it.
                    let requests = (try await sim.counters()["requests_by_account"] as? [String: Int])?[login] ?? 0
                    try await Task.sleep(for: .milliseconds(600))
                    #expect((try await sim.counters()["requests_by_account"] as? [String: Int])?[login] == requests)
                    // Sign in again (a new grant) and go on.
                    _ = try await daemon.tokenctl(["logout", login])
                    try await daemon.importAccount(login, sim: sim)
                }
                let reusesAfter = try await sim.counters()["refresh_token_reuse"] as? Int ?? 0
                inWindow += reusesAfter - reusesBefore
                #expect(reusesAfter - reusesBefore <= Self.accounts.count)
            }
            let counters = try await sim.counters()
            // Every reuse livesim saw came from a kill in the window, and revoked exactly one family.
            #expect(counters["refresh_token_reuse"] as? Int == inWindow)
            #expect(counters["revoked_families"] as? Int ?? 0 >= inWindow)
            // Each kill forced into the window cost exactly that one account (one reuse, one family).
            #expect(inWindow >= forced)
            print(
                "crash test (strict): \(Self.kills) kills, \(inWindow) landed between the server's rotation and the commit (\(forced) of them on purpose)"
            )
        }
    }
}
