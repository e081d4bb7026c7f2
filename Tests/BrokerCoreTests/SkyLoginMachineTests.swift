import BrokerCore
import Foundation
import Testing

/// SkyLogin in the refresh machine: a Microsoft account's credentials follow its login.skype.com
/// token, a Skype name's come from its login hash, the RSA key made at first use is written with
/// them and used for every renewal, and a refusal ends in `needs_reauth`.
@Suite("Refresh machine: SkyLogin")
struct SkyLoginMachineTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let alice = AccountName(rawValue: "alice@example.com")!
    let echo = AccountName(rawValue: "echo123")!
    let half: () -> Double = { 0.5 }
    let realm = Realm(name: "live", skyloginServers: ["127.0.0.1:33033"])

    func machine(scopes: [Scope] = [.loginSkype, .ssl]) -> RefreshMachine {
        RefreshMachine(policy: RefreshPolicy(), scopes: scopes, realms: [realm])
    }

    func credentials(_ value: String, key: String, at: Date, lifetime: TimeInterval = 600) -> Credential {
        Credential(
            value: Secret(value), obtainedAt: at, expiresAt: at.addingTimeInterval(lifetime), proofKey: Secret(key),
            subject: "live:alice")
    }

    func skypeSeed(key: String = "K1") -> AccountSeed {
        AccountSeed(
            name: echo, realm: "live", login: "echo123", refreshToken: nil, loginKind: .skype,
            loginHash: Secret("00112233445566778899aabbccddeeff"), skylogin: credentials("C0", key: key, at: t0))
    }

    @Test("a Microsoft account: a fresh login.skype.com token first, then SkyLogin with it; the new key is written")
    func microsoftAccount() throws {
        var m = machine()
        _ = m.add(
            AccountSeed(name: alice, realm: "live", login: alice.rawValue, refreshToken: Secret("rt")), now: t0,
            random: half)
        #expect(m.accounts[alice]!.kinds(scopes: [.loginSkype, .ssl]).contains(.skylogin))
        var jobs = m.due(now: t0, random: half)
        // One job per account: the scopes and SkyLogin queue behind each other.
        try #require(jobs.count == 1)
        var job = jobs[0]
        // Whatever is due first, get to the SkyLogin job (it may first run a scope's refresh).
        var guardCount = 0
        while job.key.kind != .skylogin, guardCount < 5 {
            guardCount += 1
            guard case .refreshScope(let scope, _) = job.step else { break }
            let token = AccessToken(
                value: Secret("tok-\(scope.alias)"), scope: scope, obtainedAt: t0,
                expiresAt: t0.addingTimeInterval(3600))
            _ = m.apply(
                .granted(job, TokenGrant(accessToken: token, refreshToken: nil, userID: nil)), now: t0, random: half)
            _ = m.apply(.persisted(alice, failure: nil), now: t0, random: half)
            jobs = m.due(now: t0, random: half)
            try #require(jobs.count == 1)
            job = jobs[0]
        }
        try #require(job.key.kind == .skylogin)
        guard case .skylogin(.oauth(let token), let key) = job.step else {
            Issue.record("expected a SkyLogin step with the token, got \(job.step)")
            return
        }
        #expect(token == Secret("tok-login-skype"))
        #expect(key == nil) // made by the executor at first use
        let effects = m.apply(.obtained(job, credentials("C1", key: "NEWKEY", at: t0)), now: t0, random: half)
        guard case .persist(_, let write) = effects.first, effects.count == 1 else {
            Issue.record("expected the write first, got \(effects)")
            return
        }
        #expect(write.skylogin?.proofKey == Secret("NEWKEY"))
        #expect(m.credential(CredentialKey(account: alice, kind: .skylogin)) == nil)
        _ = m.apply(.persisted(alice, failure: nil), now: t0, random: half)
        #expect(m.credential(CredentialKey(account: alice, kind: .skylogin))?.subject == "live:alice")
        #expect(m.accounts[alice]!.skyloginKey == Secret("NEWKEY"))
        // The renewal reuses the key.
        let later = t0.addingTimeInterval(500)
        let renewal = try #require(m.due(now: later, random: half).first { $0.key.kind == .skylogin })
        guard case .skylogin(_, let renewalKey) = renewal.step else {
            Issue.record("expected SkyLogin, got \(renewal.step)")
            return
        }
        #expect(renewalKey == Secret("NEWKEY"))
    }

    @Test("a Skype name keeps only SkyLogin credentials, renewed with its login hash and its own key")
    func skypeName() throws {
        var m = machine()
        _ = m.add(skypeSeed(), now: t0, random: half)
        let account = m.accounts[echo]!
        #expect(account.kinds(scopes: [.loginSkype, .ssl]) == [.skylogin])
        let error = account.unavailable(.scope(.ssl), scopes: [.loginSkype, .ssl])
        #expect(error?.code == .credentialUnavailable && error?.message.contains("Skype name") == true)
        #expect(m.due(now: t0.addingTimeInterval(10), random: half).isEmpty)
        let job = try #require(m.due(now: t0.addingTimeInterval(450), random: half).first)
        guard case .skylogin(.password(let name, let hash), let key) = job.step else {
            Issue.record("expected a password SkyLogin step, got \(job.step)")
            return
        }
        #expect(name == "echo123" && hash == Secret("00112233445566778899aabbccddeeff") && key == Secret("K1"))
    }

    @Test("a refusal (an answer code other than 4200): needs_reauth with the code, and no retries")
    func refused() throws {
        var m = machine()
        _ = m.add(skypeSeed(), now: t0, random: half)
        let job = try #require(m.due(now: t0.addingTimeInterval(450), random: half).first)
        _ = m.apply(
            .failed(job, .passwordRefused(by: "the SkyLogin server", reason: "answer code 4201")),
            now: t0.addingTimeInterval(450), random: half)
        #expect(m.accounts[echo]!.state == .needsReauth)
        #expect(m.accounts[echo]!.stateReason?.contains("4201") == true)
        #expect(m.due(now: t0.addingTimeInterval(5000), random: half).isEmpty)
    }

    @Test("without skylogin_servers, or without the login-skype scope, SkyLogin credentials are unavailable")
    func unavailable() {
        var plain = RefreshMachine(policy: RefreshPolicy(), scopes: [.loginSkype], realms: [Realm(name: "live")])
        _ = plain.add(
            AccountSeed(name: alice, realm: "live", login: alice.rawValue, refreshToken: Secret("rt")), now: t0,
            random: half)
        #expect(
            plain.accounts[alice]!.unavailable(.skylogin, scopes: [.loginSkype])?.message.contains("skylogin_servers")
                == true)
        var noScope = machine(scopes: [.ssl])
        _ = noScope.add(
            AccountSeed(name: alice, realm: "live", login: alice.rawValue, refreshToken: Secret("rt")), now: t0,
            random: half)
        #expect(
            noScope.accounts[alice]!.unavailable(.skylogin, scopes: [.ssl])?.message.contains("login-skype") == true)
    }

    @Test("a Microsoft account's refused token is retried once with a new one before the refusal counts")
    func refusedTokenRetriedOnce() throws {
        var m = machine(scopes: [.loginSkype])
        let token = AccessToken(
            value: Secret("old"), scope: .loginSkype, obtainedAt: t0, expiresAt: t0.addingTimeInterval(3600))
        _ = m.add(
            AccountSeed(
                name: alice, realm: "live", login: alice.rawValue, refreshToken: Secret("rt"), accessTokens: [token],
                skylogin: credentials("C0", key: "K", at: t0, lifetime: 100), skyloginKey: Secret("K")),
            now: t0, random: half)
        let job = try #require(m.due(now: t0.addingTimeInterval(80), random: half).first { $0.key.kind == .skylogin })
        guard case .skylogin(.oauth(let sent), let key) = job.step else {
            Issue.record("expected SkyLogin with the held token, got \(job.step)")
            return
        }
        #expect(sent == Secret("old") && key == Secret("K"))
        let refusal = RefreshFailure.passwordRefused(by: "the SkyLogin server", reason: "answer code 4201")
        let effects = m.apply(.failed(job, refusal), now: t0.addingTimeInterval(80), random: half)
        guard case .run(let retry) = effects.first, case .refreshScope(.loginSkype, _) = retry.step else {
            Issue.record("expected a new login-skype token first, got \(effects)")
            return
        }
        #expect(m.accounts[alice]!.state == .active)
        // Refused again with the new token: now it counts.
        _ = m.apply(.failed(retry, refusal), now: t0.addingTimeInterval(81), random: half)
        #expect(m.accounts[alice]!.state == .needsReauth)
    }
}
