import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Refresh engine against livesim, in real time")
struct RefreshTests {
    @Test(
        "lifetimes of 6 s over 60 s: every token served is valid with the margin left; refresh counts match the schedule"
    )
    func keepsFresh() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 6 }, refresh: ["safety_margin = 1"]) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let before = try await sim.counters()["requests_by_scope"] as? [String: Int] ?? [:]
            let start = ContinuousClock.now
            var served = 0
            var tokens = Set<String>()
            while ContinuousClock.now - start < .seconds(60) {
                for alias in scopeAliases {
                    let response = try await daemon.token("alice@example.com", scope: alias)
                    try #require(response.status == 200, "\(response.body)")
                    let token = try #require(response.json["access_token"] as? String)
                    let expiresIn = try #require(response.json["expires_in"] as? Int)
                    #expect(expiresIn >= 1)
                    if tokens.insert(token).inserted {
                        let validation = try await sim.validate(token)
                        #expect(validation["valid"] as? Bool == true)
                        #expect(validation["scope"] as? String == fullScopes[alias])
                        let expires = try #require(
                            (validation["expires_at"] as? String).flatMap { ISO8601DateFormatter().date(from: $0) })
                        #expect(expires.timeIntervalSinceNow >= 0.5)
                    }
                    served += 1
                }
                try await Task.sleep(for: .milliseconds(150))
            }
            let after = try await sim.counters()["requests_by_scope"] as? [String: Int] ?? [:]
            // 60 s / (0.75 × 6 s) ≈ 13.3 refreshes per scope; allow ±30%.
            for scope in fullScopes.values {
                let count = (after[scope] ?? 0) - (before[scope] ?? 0)
                #expect((9...17).contains(count), "\(scope): \(count) refreshes")
            }
            #expect(served > 1000)
        }
    }

    @Test("strict rotation, five scopes expiring together, 50 concurrent readers: no refresh token is ever reused")
    func strictConcurrentReaders() async throws {
        try await withBroker(
            sim: {
                $0.tokenLifetime = 4
                $0.rotation = .strict
            }, refresh: ["safety_margin = 1"]
        ) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for reader in 0..<50 {
                    group.addTask {
                        var failed = 0
                        let deadline = ContinuousClock.now + .seconds(12)
                        var round = reader
                        while ContinuousClock.now < deadline {
                            let response = try await daemon.token("alice@example.com", scope: scopeAliases[round % 5])
                            if response.status != 200 { failed += 1 }
                            round += 1
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        return failed
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0)
            let counters = try await sim.counters()
            #expect(counters["refresh_token_reuse"] as? Int == 0)
            #expect(counters["revoked_families"] as? Int == 0)
            #expect((counters["refreshes"] as? Int ?? 0) >= 15)
            let status = try await daemon.get("/v1/accounts/alice@example.com")
            #expect(status.json["state"] as? String == "active")
        }
    }

    @Test("after a restart, valid tokens come from the database and the last rotated refresh token works")
    func restart() async throws {
        try await withBroker(sim: {
            $0.tokenLifetime = 600
            $0.rotation = .strict
        }) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            var before: [String: String] = [:]
            for alias in scopeAliases {
                before[alias] =
                    try await daemon.token("alice@example.com", scope: alias).json["access_token"] as? String
            }
            let refreshes = try await sim.counters()["refreshes"] as? Int
            #expect(await daemon.stop() == 0)
            try await Task.sleep(for: .milliseconds(1_100))
            try await daemon.start()
            for alias in scopeAliases {
                let token = try await daemon.token("alice@example.com", scope: alias).json["access_token"] as? String
                #expect(token != nil && token == before[alias])
            }
            #expect(try await sim.counters()["refreshes"] as? Int == refreshes)
            // Asking for more validity than the token has forces a refresh with the stored (rotated) refresh token.
            let forced = try await daemon.token("alice@example.com", scope: "skype", minValid: 599)
            #expect(forced.status == 200, "\(forced.body)")
            #expect(forced.json["access_token"] as? String != before["skype"])
            let counters = try await sim.counters()
            #expect(counters["refresh_token_reuse"] as? Int == 0)
            #expect(counters["refreshes"] as? Int == (refreshes ?? 0) + 1)
        }
    }

    @Test(
        "after a restart, the stored skypetoken, UIC and cookies are served until their own refresh point: none is fetched again, no sign-in"
    )
    func restartKeepsDerivedCredentials() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            let login = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin"], stdin: "correct horse\n")
            try #require(login.status == 0, "\(login.stderr)")
            let skypetoken = try await daemon.get("/v1/accounts/alice@example.com/skypetoken")
            let uic = try await daemon.get("/v1/accounts/alice@example.com/uic")
            try #require(skypetoken.status == 200 && uic.status == 200, "\(skypetoken.body) \(uic.body)")
            func fetched() async throws -> [String: Int] {
                let requests = try await sim.counters()["requests"] as? [String: Int] ?? [:]
                return requests.filter {
                    ["skypetoken", "user_initialization", "authorize", "post", "token"].contains($0.key)
                }
            }
            // Let the start-up refreshes (every scope, the skypetoken, the UIC) settle first.
            try await Task.sleep(for: .milliseconds(1_500))
            let before = try await fetched()
            #expect(await daemon.stop() == 0)
            try await daemon.start()
            let again = try await daemon.get("/v1/accounts/alice@example.com/skypetoken")
            let uicAgain = try await daemon.get("/v1/accounts/alice@example.com/uic")
            #expect(again.json["skypetoken"] as? String == skypetoken.json["skypetoken"] as? String)
            #expect(uicAgain.json["uic"] as? String == uic.json["uic"] as? String)
            #expect(again.json["skypetoken"] as? String != nil && uicAgain.json["uic"] as? String != nil)
            // Well inside every refresh point (0.70 of 600 s at the earliest): nothing is fetched.
            try await Task.sleep(for: .seconds(3))
            #expect(try await fetched() == before)
        }
    }

    @Test("a revoked grant sets that account to needs_reauth; other accounts go on")
    func revokedGrant() async throws {
        try await withBroker(sim: { $0.tokenLifetime = 600 }) { sim, daemon in
            try await daemon.importAccount("alice@example.com", sim: sim)
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"x"}"#)
            try await daemon.importAccount("erin@example.com", sim: sim)
            #expect(try await sim.control(.POST, "accounts/alice@example.com/revoke").status == 200)
            try await Task.sleep(for: .milliseconds(1_100))
            let forced = try await daemon.token("alice@example.com", scope: "ssl", minValid: 599)
            #expect(forced.status == 401)
            #expect(forced.errorCode == "needs_reauth")
            let again = try await daemon.token("alice@example.com", scope: "skype")
            #expect(again.errorCode == "needs_reauth")
            let status = try await daemon.get("/v1/accounts/alice@example.com")
            #expect(status.json["state"] as? String == "needs_reauth")
            #expect((status.json["state_reason"] as? String)?.contains("revoked") == true)
            let cli = try await daemon.tokenctl(["token", "alice@example.com"])
            #expect(cli.status == 4)
            let other = try await daemon.token("erin@example.com", scope: "ssl", minValid: 599)
            #expect(other.status == 200)
            #expect(try await sim.validate(other.json["access_token"] as? String ?? "")["valid"] as? Bool == true)
            #expect(daemon.log.contains("needs_reauth"))
        }
    }
}
