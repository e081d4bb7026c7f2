import AsyncHTTPClient
import Foundation
import LiveSim
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

@Suite("Injected faults happen exactly as configured, then stop")
struct FaultTests {
    @Test("a status fault hits the next N requests of its endpoint only")
    func statusCount() async throws {
        try await withLiveSim { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            try await sim.addFault(#"{"endpoint":"token","kind":"status","status":503,"count":3}"#)
            let page = try await sim.loginPage()
            #expect(page.0.status == 200)
            var statuses: [Int] = []
            for _ in 0..<5 { statuses.append(try await sim.refresh(refreshToken).status) }
            #expect(statuses == [503, 503, 503, 200, 200])
            #expect((try await sim.counters()["faults_injected"] as? [String: Int]) == ["token": 3])
            #expect((try await sim.control(.GET, "faults").json["faults"] as? [Any])?.isEmpty == true)
        }
    }

    @Test("a fault with a duration lasts that long, then stops")
    func statusDuration() async throws {
        try await withLiveSim { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            // The window opens when livesim takes the fault: between `added` and `active`. A
            // request answered before `added + 6 s` was handled inside it, and one sent after
            // `active + 6 s` outside it; of one in between, on a slow machine, nothing is claimed.
            let added = ContinuousClock.now
            try await sim.addFault(#"{"endpoint":"*","kind":"status","status":500,"duration_seconds":6}"#)
            let active = ContinuousClock.now
            func check(_ name: String, _ send: () async throws -> Int) async throws {
                let sent = ContinuousClock.now
                let status = try await send()
                let answered = ContinuousClock.now
                if answered < added + .seconds(6) {
                    #expect(status == 500, "\(name), answered \(answered - added) after the fault was added")
                } else if sent > active + .seconds(6) {
                    #expect(status == 200, "\(name), sent \(sent - active) after the fault was in force")
                }
            }
            try await check("a refresh") { try await sim.refresh(refreshToken).status }
            try await check("the desktop page") { try await sim.request(.GET, "/oauth20_desktop.srf").status }
            try await Task.sleep(until: active + .milliseconds(6_300))
            #expect(try await sim.refresh(refreshToken).status == 200)
        }
    }

    @Test("rate_limit answers 429 with the real body and the Retry-After set")
    func rateLimit() async throws {
        try await withLiveSim { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            try await sim.addFault(#"{"endpoint":"token","kind":"rate_limit","retry_after":2,"count":1}"#)
            let limited = try await sim.refresh(refreshToken)
            #expect(limited.status == 429)
            #expect(limited.header("Retry-After") == "2")
            #expect(limited.body == LiveSimText.rateLimitBody)
            #expect(try await sim.refresh(refreshToken).status == 200)
        }
    }

    @Test("latency delays the answer, which then arrives normally")
    func latency() async throws {
        try await withLiveSim { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            try await sim.addFault(#"{"endpoint":"token","kind":"latency","latency_ms":400,"count":1}"#)
            let start = ContinuousClock.now
            let response = try await sim.refresh(refreshToken)
            #expect(ContinuousClock.now - start >= .milliseconds(400))
            #expect(response.status == 200)
        }
    }

    @Test("reset, truncate and hang break the connection; malformed gives an unparsable body")
    func brokenConnections() async throws {
        try await withLiveSim({ $0.rotation = .none }) { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            try await sim.addFault(#"{"endpoint":"token","kind":"reset","count":1}"#)
            await #expect(throws: (any Error).self) { _ = try await sim.refresh(refreshToken) }

            try await sim.addFault(#"{"endpoint":"token","kind":"truncate","count":1}"#)
            await #expect(throws: (any Error).self) { _ = try await sim.refresh(refreshToken) }

            try await sim.addFault(#"{"endpoint":"token","kind":"malformed","count":1}"#)
            let malformed = try await sim.refresh(refreshToken)
            #expect(malformed.status == 200)
            #expect((try? JSONSerialization.jsonObject(with: Data(malformed.body.utf8))) == nil)
            #expect(malformed.body.hasPrefix(#"{"token_type":"bearer""#))

            try await sim.addFault(#"{"endpoint":"token","kind":"hang","count":1}"#)
            let start = ContinuousClock.now
            await #expect(throws: (any Error).self) {
                _ = try await sim.request(
                    .POST, "/oauth20_token.srf", body: "grant_type=refresh_token", timeout: .milliseconds(500))
            }
            #expect(ContinuousClock.now - start >= .milliseconds(450))

            #expect(try await sim.refresh(refreshToken).status == 200)
            #expect((try await sim.counters()["faults_injected"] as? [String: Int]) == ["token": 4])
        }
    }

    @Test("a fault after processing: the server rotated the token but the client never heard")
    func resetAfterProcessing() async throws {
        try await withLiveSim({ $0.rotation = .strict }) { sim in
            let refreshToken = try #require(try await sim.grant("alice@example.com")["refresh_token"] as? String)
            try await sim.addFault(#"{"endpoint":"token","kind":"reset","count":1,"after_processing":true}"#)
            await #expect(throws: (any Error).self) { _ = try await sim.refresh(refreshToken) }
            #expect(try await sim.refresh(refreshToken).json["error"] as? String == "invalid_grant")
            #expect(try await sim.counters()["refresh_token_reuse"] as? Int == 1)
        }
    }

    @Test("faults can be listed and cleared; bad fault requests are refused")
    func manageFaults() async throws {
        try await withLiveSim { sim in
            try await sim.addFault(#"{"endpoint":"skypetoken","kind":"status","status":502,"count":10}"#)
            #expect((try await sim.control(.GET, "faults").json["faults"] as? [Any])?.count == 1)
            #expect(try await sim.control(.DELETE, "faults").status == 200)
            #expect((try await sim.control(.GET, "faults").json["faults"] as? [Any])?.isEmpty == true)
            #expect(
                try await sim.control(.POST, "faults", json: #"{"endpoint":"nowhere","kind":"hang","count":1}"#).status
                    == 400)
            #expect(try await sim.control(.POST, "faults", json: #"{"endpoint":"token","kind":"hang"}"#).status == 400)
            #expect(
                try await sim.control(.POST, "faults", json: #"{"endpoint":"token","kind":"explode","count":1}"#).status
                    == 400)
        }
    }
}

@Suite("Control API")
struct ControlTests {
    @Test("the control API is not served on the public listener")
    func notPublic() async throws {
        try await withLiveSim { sim in
            let counters = try await sim.request(.GET, "/_livesim/counters")
            let secrets = try await sim.request(.GET, "/_livesim/secrets")
            let health = try await sim.control(.GET, "health")
            #expect(counters.status == 404)
            #expect(secrets.status == 404)
            #expect(health.status == 200)
        }
    }

    @Test("the control listener can be turned off")
    func controlOff() async throws {
        let server = try await LiveSimServer.start(
            {
                var c = LiveSimConfiguration()
                c.logRequests = false
                return c
            }())
        #expect(server.controlPort == nil)
        try await server.shutdown()
    }

    @Test("accounts are created, changed and deleted")
    func accounts() async throws {
        try await withLiveSim { sim in
            let created = try await sim.control(
                .POST, "accounts", json: #"{"login":"erin@example.com","password":"pw-erin"}"#)
            #expect(created.status == 201)
            #expect(
                try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"x"}"#).status
                    == 409)
            let login = try await sim.passwordLogin(AccountSpec(login: "erin@example.com", password: "pw-erin"))
            #expect(login.fragment["access_token"] != nil)
            #expect(
                try await sim.control(.PATCH, "accounts/erin@example.com", json: #"{"two_factor":true}"#).status == 200)
            let page = try await sim.loginPage()
            let proofs = try await sim.postPassword(page.1!, login: "erin@example.com", password: "pw-erin")
            #expect(proofs.body.contains("fmHF"))
            #expect(try await sim.control(.DELETE, "accounts/erin@example.com").status == 200)
            #expect(try await sim.validate(login.fragment["access_token"]!)["valid"] as? Bool == false)
            #expect(try await sim.control(.GET, "accounts/erin@example.com").status == 404)
        }
    }

    @Test("validate tells issued from unknown, and secrets export holds tokens and passwords")
    func validateAndSecrets() async throws {
        try await withLiveSim { sim in
            let (fragment, cookies) = try await sim.passwordLogin()
            let unknown = try await sim.validate("EwAnot-issued")
            #expect(unknown["issued"] as? Bool == false)
            let cookie = try await sim.validate(try #require(cookies["WLSSC"]))
            #expect(cookie["kind"] as? String == "cookie" && cookie["valid"] as? Bool == true)
            let secrets = Set(try await sim.secrets())
            #expect(secrets.contains(fragment["access_token"]!))
            #expect(secrets.contains(fragment["refresh_token"]!))
            #expect(secrets.contains(cookies["MSPAuth"]!))
            #expect(secrets.contains("correct horse"))
        }
    }
}
