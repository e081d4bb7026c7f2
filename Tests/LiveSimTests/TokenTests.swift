import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("oauth20_token.srf: refresh and rotation")
struct TokenTests {
    @Test("a refresh token refreshes each of the five scopes")
    func refreshesEveryScope() async throws {
        try await withLiveSim({ $0.rotation = .none }) { sim in
            let grant = try await sim.grant("alice@example.com")
            let refreshToken = try #require(grant["refresh_token"] as? String)
            for scope in allScopes {
                let response = try await sim.refresh(refreshToken, scope: scope)
                #expect(response.status == 200)
                let json = response.json
                #expect(
                    Set(json.keys) == ["access_token", "expires_in", "refresh_token", "scope", "token_type", "user_id"])
                #expect(json["scope"] as? String == scope)
                let validation = try await sim.validate(try #require(json["access_token"] as? String))
                #expect(validation["scope"] as? String == scope)
                #expect(validation["valid"] as? Bool == true)
            }
            let byScope = try await sim.counters()["requests_by_scope"] as? [String: Int]
            #expect(byScope == Dictionary(uniqueKeysWithValues: allScopes.map { ($0, 1) }))
        }
    }

    @Test("errors come as the service's JSON: invalid_grant, invalid_scope, invalid_request, unauthorized_client")
    func errors() async throws {
        try await withLiveSim { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            let unknown = try await sim.refresh("M.C5not-a-token")
            #expect(unknown.status == 400)
            #expect(unknown.json["error"] as? String == "invalid_grant")
            #expect(unknown.json["error_description"] as? String == LiveSimText.invalidGrant)
            #expect(
                try await sim.refresh(refreshToken, scope: "service::nope::MBI_SSL").json["error"] as? String
                    == "invalid_scope")
            #expect(
                try await sim.refresh(refreshToken, clientID: "000000004C12AE6F").json["error"] as? String
                    == "unauthorized_client")
            let missing = try await sim.request(
                .POST, "/oauth20_token.srf", body: "client_id=00000000480BC46C&grant_type=refresh_token")
            #expect(missing.json["error"] as? String == "invalid_request")
            #expect(try await sim.refresh(refreshToken).status == 200)
        }
    }

    @Test("rotation none: the refresh token is returned unchanged and stays reusable")
    func rotationNone() async throws {
        try await withLiveSim({ $0.rotation = .none }) { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            for _ in 0..<3 {
                let response = try await sim.refresh(refreshToken)
                #expect(response.json["refresh_token"] as? String == refreshToken)
            }
        }
    }

    @Test("rotation rotate: a new refresh token each time; the old one works only within the grace period")
    func rotationRotate() async throws {
        try await withLiveSim({
            $0.rotation = .rotate
            $0.rotationGrace = 3
        }) { sim in
            let first = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            let second = try #require(try await sim.refresh(first).json["refresh_token"] as? String)
            #expect(second != first)
            #expect(try await sim.refresh(first).status == 200)
            try await Task.sleep(for: .milliseconds(3_300))
            #expect(try await sim.refresh(first).json["error"] as? String == "invalid_grant")
            #expect(try await sim.refresh(second).status == 200)
            let counters = try await sim.counters()
            #expect(counters["rotated_grace_uses"] as? Int == 1)
            #expect(counters["refresh_token_reuse"] as? Int == 1)
            #expect(counters["revoked_families"] as? Int == 0)
        }
    }

    @Test("rotation strict: reusing a refresh token revokes the whole family and is counted")
    func rotationStrict() async throws {
        try await withLiveSim({ $0.rotation = .strict }) { sim in
            let first = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            let rotated = try await sim.refresh(first).json
            let second = try #require(rotated["refresh_token"] as? String)
            let access = try #require(rotated["access_token"] as? String)
            #expect(try await sim.refresh(first).json["error"] as? String == "invalid_grant")
            #expect(try await sim.refresh(second).json["error"] as? String == "invalid_grant")
            #expect(try await sim.validate(access)["valid"] as? Bool == false)
            let counters = try await sim.counters()
            #expect(counters["refresh_token_reuse"] as? Int == 1)
            #expect(counters["revoked_families"] as? Int == 1)
        }
    }

    @Test("strict rotation stays exact under 50 concurrent grants")
    func strictConcurrent() async throws {
        try await withLiveSim({ $0.rotation = .strict }) { sim in
            var tokens: [String] = []
            for _ in 0..<50 {
                tokens.append(try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String))
            }
            // Each grant replaces the previous family, so only the last one is live.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for token in tokens { group.addTask { try await sim.refresh(token).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 1)
            #expect(try await sim.counters()["refresh_token_reuse"] as? Int == 0)
        }
    }

    @Test("lifetimes: global, per kind and per account")
    func lifetimes() async throws {
        try await withLiveSim({ $0.tokenLifetime = 600 }) { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            #expect(try await sim.refresh(refreshToken).json["expires_in"] as? Int == 600)
            try await sim.setSettings(#"{"lifetimes":{"access_token":120}}"#)
            #expect(try await sim.refresh(refreshToken).json["expires_in"] as? Int == 120)
            let patched = try await sim.control(
                .PATCH, "accounts/alice@example.com", json: #"{"lifetimes":{"access_token":7}}"#)
            #expect(patched.status == 200)
            #expect(try await sim.refresh(refreshToken).json["expires_in"] as? Int == 7)
            let page = try await sim.loginPage()
            let response = try await sim.postPassword(page.1!, login: "alice@example.com", password: "correct horse")
            #expect(
                response.headers.filter { $0.0 == "Set-Cookie" && $0.1.hasPrefix("MSPAuth=") }.first?.1.contains(
                    "Max-Age=600") == true)
            let bad = try await sim.control(.PUT, "settings", json: #"{"lifetimes":{"bogus":1}}"#)
            #expect(bad.status == 400)
        }
    }

    @Test("an access token expires after its lifetime")
    func expiry() async throws {
        // 4 s, not 1: on a loaded machine the first check may come a second or more after the grant.
        try await withLiveSim({ $0.tokenLifetime = 4 }) { sim in
            let grant = try await sim.grant("alice@example.com")
            let access = try #require(grant["access_token"] as? String)
            #expect(try await sim.validate(access)["valid"] as? Bool == true)
            try await Task.sleep(for: .milliseconds(4_200))
            let validation = try await sim.validate(access)
            #expect(validation["valid"] as? Bool == false)
            #expect(validation["reason"] as? String == "expired")
        }
    }

    @Test("revoking one scope stops only that scope; revoking the account stops everything")
    func revoke() async throws {
        try await withLiveSim { sim in
            let grant = try await sim.grant("alice@example.com")
            let refreshToken = try #require(grant["refresh_token"] as? String)
            let access = try #require(grant["access_token"] as? String)
            #expect(
                try await sim.control(
                    .POST, "accounts/alice@example.com/revoke", json: #"{"scope":"service::skype.com::MBI_SSL"}"#
                ).status == 200)
            #expect(try await sim.refresh(refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await sim.validate(access)["valid"] as? Bool == false)
            let ssl = try await sim.refresh(refreshToken, scope: "service::ssl.live.com::MBI_SSL")
            #expect(ssl.status == 200)
            let next = try #require(ssl.json["refresh_token"] as? String)
            #expect(try await sim.control(.POST, "accounts/alice@example.com/revoke").status == 200)
            #expect(
                try await sim.refresh(next, scope: "service::ssl.live.com::MBI_SSL").json["error"] as? String
                    == "invalid_grant")
            #expect(try await sim.counters()["revoked_families"] as? Int == 1)
        }
    }
}
