import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Provider failures: outages and rate limits")
struct FailureTests {
    @Test(
        "lifetimes of 120 s and a 30 s outage from the first refresh point: every read succeeds; status shows the backoff; refreshing resumes"
    )
    func outage() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 120 }, refresh: ["safety_margin = 10", "jitter = 0"]) {
            sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let enrolled = ContinuousClock.now
            var failedReads = 0
            var sawBackoff = false
            var outageStarted = false
            while ContinuousClock.now - enrolled < .seconds(128) {
                if !outageStarted, ContinuousClock.now - enrolled >= .seconds(89) {
                    try await sim.addFault(#"{"endpoint":"token","kind":"status","status":503,"duration_seconds":30}"#)
                    outageStarted = true
                }
                for alias in scopeAliases {
                    let response = try await daemon.token("alice@example.com", scope: alias)
                    if response.status != 200 {
                        failedReads += 1
                        print("read failed at \(ContinuousClock.now - enrolled): \(response.body)")
                    } else {
                        #expect((response.json["expires_in"] as? Int ?? -1) >= 0)
                    }
                }
                if outageStarted, !sawBackoff {
                    let status = try await daemon.get("/v1/accounts/alice@example.com")
                    let scopes = status.json["scopes"] as? [[String: Any]] ?? []
                    sawBackoff = scopes.contains {
                        ($0["backoff_until"] as? String) != nil && ($0["failures"] as? Int ?? 0) > 0
                            && $0["last_error"] != nil
                    }
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(failedReads == 0)
            #expect(sawBackoff)
            #expect((try await sim.counters()["refresh_failures"] as? [String: Int] ?? [:]).isEmpty)
            let faults = try await sim.counters()["faults_injected"] as? [String: Int] ?? [:]
            #expect((faults["token"] ?? 0) >= 5)
            // Recovered: every scope refreshed after the outage and has no failures.
            let status = try await daemon.get("/v1/accounts/alice@example.com")
            for scope in status.json["scopes"] as? [[String: Any]] ?? [] {
                #expect(scope["failures"] as? Int == 0)
                let expires = (scope["expires_at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) }
                #expect((expires?.timeIntervalSinceNow ?? 0) > 60)
            }
        }
    }

    @Test("a 429 with Retry-After: 2 rests the token endpoint for 2 s for every account, then refreshing resumes")
    func rateLimitRestsRealm() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"x"}"#)
            try await daemon.importAccount("erin@example.com", sim: sim)
            for alias in scopeAliases {
                _ = try await daemon.token("alice@example.com", scope: alias)
                _ = try await daemon.token("erin@example.com", scope: alias)
            }
            try await sim.addFault(#"{"endpoint":"token","kind":"rate_limit","retry_after":2,"count":1}"#)
            try await Task.sleep(for: .milliseconds(1_100))
            // Both accounts now want a refresh at once: one of them gets the 429.
            async let a = daemon.token("alice@example.com", scope: "ssl", minValid: 599)
            async let b = daemon.token("erin@example.com", scope: "ssl", minValid: 599)
            try await Task.sleep(for: .milliseconds(300))
            let limited = ContinuousClock.now
            let requestsAtLimit = try await sim.counters()["requests"] as? [String: Int] ?? [:]
            #expect((try await sim.counters()["faults_injected"] as? [String: Int])?["token"] == 1)
            let status = try await daemon.get("/v1/accounts/erin@example.com")
            let ssl = (status.json["scopes"] as? [[String: Any]])?.first { $0["alias"] as? String == "ssl" }
            let aliceStatus = try await daemon.get("/v1/accounts/alice@example.com")
            let aliceSSL = (aliceStatus.json["scopes"] as? [[String: Any]])?.first { $0["alias"] as? String == "ssl" }
            #expect(ssl?["backoff_until"] != nil || aliceSSL?["backoff_until"] != nil)
            try await Task.sleep(until: limited + .milliseconds(1_400))
            let requestsDuringRest = try await sim.counters()["requests"] as? [String: Int] ?? [:]
            #expect(requestsDuringRest["token"] == requestsAtLimit["token"], "no token request during the rest")
            let (ra, rb) = try await (a, b)
            // The limited read waited out the rest inside read_wait and then got a fresh token.
            #expect(ra.status == 200, "\(ra.body)")
            #expect(rb.status == 200, "\(rb.body)")
            #expect(ContinuousClock.now - limited >= .milliseconds(1_400))
            try await Task.sleep(until: limited + .seconds(3))
            let forced = try await daemon.token("alice@example.com", scope: "contacts", minValid: 599)
            #expect(forced.status == 200)
            let after = try await sim.counters()["requests"] as? [String: Int] ?? [:]
            #expect((after["token"] ?? 0) > (requestsAtLimit["token"] ?? 0))
        }
    }
}
