import Foundation
import LiveSim
import NIOHTTP1
import TestSupport
import Testing

@Suite("Enrollment through tokenctl against livesim")
struct EnrollmentTests {
    @Test("password, pasted redirect URL and import all enroll, and the tokens served are livesim's")
    func enrollThreeWays() async throws {
        try await withBroker { sim, daemon in
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"erin@example.com","password":"pw-erin"}"#)
            _ = try await sim.control(.POST, "accounts", json: #"{"login":"fred@example.com","password":"pw-fred"}"#)

            let byPassword = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin"], stdin: "correct horse\n")
            #expect(byPassword.status == 0, "\(byPassword.stderr)")

            let location = try await browserSignIn(sim, login: "erin@example.com", password: "pw-erin")
            #expect(location.hasPrefix("https://login.live.com/oauth20_desktop.srf"))
            let byBrowser = try await daemon.tokenctl(
                ["login", "--browser", "erin@example.com", "--name", "erin"], stdin: location + "\n")
            #expect(byBrowser.status == 0, "\(byBrowser.stderr)")
            #expect(byBrowser.stderr.contains("oauth20_authorize.srf"))

            try await daemon.importAccount("fred@example.com", sim: sim)

            for name in ["alice@example.com", "erin", "fred@example.com"] {
                let token = try await daemon.tokenctl(["token", name, "--scope", "ssl"])
                #expect(token.status == 0, "\(token.stderr)")
                let value = token.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                let validation = try await sim.validate(value)
                #expect(validation["valid"] as? Bool == true)
                #expect(validation["scope"] as? String == "service::ssl.live.com::MBI_SSL")
            }
            let accounts = try await daemon.tokenctl(["accounts"])
            #expect(accounts.stdout.contains("erin") && accounts.stdout.contains("fred@example.com"))
        }
    }

    @Test("a wrong password reports livesim's exact sErrTxt, unescaped")
    func wrongPassword() async throws {
        try await withBroker { _, daemon in
            let result = try await daemon.tokenctl(
                ["login", "alice@example.com", "--password-stdin"], stdin: "wrong\n")
            #expect(result.status == 4)
            #expect(result.stderr.contains(LiveSimText.wrongPassword))
            let enroll = try await daemon.request(
                .POST, "/v1/accounts", body: #"{"method":"password","login":"alice@example.com","password":"bad"}"#)
            #expect(enroll.errorCode == "invalid_credentials")
            #expect(enroll.errorMessage == LiveSimText.wrongPassword)
        }
    }

    @Test("a two-factor account reports that interactive sign-in is required")
    func twoFactor() async throws {
        try await withBroker { _, daemon in
            let result = try await daemon.tokenctl(["login", "bob@example.com", "--password-stdin"], stdin: "pw-bob\n")
            #expect(result.status == 4)
            #expect(result.stderr.contains("interactive sign-in required"))
            #expect(result.stderr.contains("tokenctl login --browser"))
        }
    }

    @Test("a locked account reports that it is locked")
    func locked() async throws {
        try await withBroker { _, daemon in
            let result = try await daemon.tokenctl(
                ["login", "carol@example.com", "--password-stdin"], stdin: "pw-carol\n")
            #expect(result.status == 4)
            #expect(result.stderr.contains("locked"))
            let enroll = try await daemon.request(
                .POST, "/v1/accounts", body: #"{"method":"password","login":"carol@example.com","password":"pw-carol"}"#
            )
            #expect(enroll.errorCode == "account_locked")
        }
    }

    @Test("an imported refresh token that livesim refuses is not enrolled")
    func badImport() async throws {
        try await withBroker { _, daemon in
            let result = try await daemon.tokenctl(
                ["import", "alice@example.com", "--refresh-token-stdin"], stdin: "M.C5not-real\n")
            #expect(result.status == 4)
            let accounts = try await daemon.get("/v1/accounts")
            #expect((accounts.json["accounts"] as? [Any])?.isEmpty == true)
        }
    }
}
