import Foundation
import LiveSim
import TestSupport
import Testing

@Suite("Identity-provider faults")
struct ProviderFaultTests {
    @Test("a hanging provider never delays a cached read, and the hung refresh times out instead of sticking")
    func hangingProvider() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }, refresh: ["read_wait = 2"]) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            for alias in scopeAliases {
                #expect(try await daemon.token("alice@example.com", scope: alias).status == 200)
            }
            try await sim.addFault(#"{"endpoint":"token","kind":"hang","count":1}"#)
            try await Task.sleep(for: .milliseconds(1_100))
            // This read triggers a refresh that the provider never answers. After read_wait it gets
            // temporarily_unavailable: the cached token is valid but has less than the 599 s asked for.
            async let waiting = daemon.token("alice@example.com", scope: "contacts", minValid: 599)
            try await Task.sleep(for: .milliseconds(200))
            var slowest = Duration.zero
            for round in 0..<100 {
                let start = ContinuousClock.now
                let response = try await daemon.token("alice@example.com", scope: scopeAliases[round % 2 == 0 ? 0 : 1])
                slowest = max(slowest, ContinuousClock.now - start)
                #expect(response.status == 200)
            }
            print("provider-faults: slowest cached read while a refresh hangs: \(slowest)")
            #expect(slowest < .milliseconds(250))
            let answer = try await waiting
            #expect(answer.status == 503)
            #expect(answer.errorCode == "temporarily_unavailable")
            // The hung request times out (every provider request has one) and the scope refreshes.
            let hung = ContinuousClock.now
            var refreshed = false
            while ContinuousClock.now - hung < .seconds(40), !refreshed {
                let response = try await daemon.token("alice@example.com", scope: "contacts", minValid: 599)
                refreshed = response.status == 200 && (response.json["expires_in"] as? Int ?? 0) >= 599
                if !refreshed { try await Task.sleep(for: .milliseconds(500)) }
            }
            #expect(refreshed)
            let status = try await daemon.get("/v1/accounts/alice@example.com")
            let contacts = (status.json["scopes"] as? [[String: Any]])?.first { $0["alias"] as? String == "contacts" }
            #expect(contacts?["failures"] as? Int == 0)
            #expect(daemon.log.contains("refresh_failed"))
        }
    }
}
