import BrokerCore
import Foundation
import Testing

/// The rules of `rst` realms (revival servers) in the refresh machine: every site's ticket from
/// one RST.srf call, written before it is served, each ticket with its own BinarySecret, and a
/// refused password ending in `needs_reauth` with nothing retried.
@Suite("Refresh machine: rst realms")
struct RSTRealmMachineTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let alice = AccountName(rawValue: "alice@example.com")!
    let half: () -> Double = { 0.5 }
    let realm = Realm(name: "revival", signIn: .rst, rstBase: "https://rst.example")

    func machine() -> RefreshMachine { RefreshMachine(policy: RefreshPolicy(), scopes: [.skype], realms: [realm]) }

    func ticket(_ value: String, at: Date, lifetime: TimeInterval = 100, key: String? = nil) -> Credential {
        Credential(
            value: Secret(value), obtainedAt: at, expiresAt: at.addingTimeInterval(lifetime),
            proofKey: key.map(Secret.init))
    }

    var kept: [String] { realm.keptSites.map(\.address) }

    func seed(sites: [String: Credential] = [:], password: String? = "pw") -> AccountSeed {
        AccountSeed(
            name: alice, realm: "revival", login: alice.rawValue, refreshToken: nil,
            password: password.map(Secret.init),
            ticketMethod: .rst, sites: sites)
    }

    func all(_ prefix: String, at: Date, lifetime: TimeInterval = 100) -> [String: Credential] {
        Dictionary(
            uniqueKeysWithValues: kept.map {
                (
                    $0,
                    ticket(
                        "\(prefix)-\($0)", at: at, lifetime: lifetime, key: $0 == "messengerclear.live.com" ? "K" : nil)
                )
            })
    }

    @Test("the kept sites are the realm's sites but Passport.NET/tb; OAuth credentials are unavailable, naming rst")
    func keptSitesAndUnavailable() {
        var m = machine()
        _ = m.add(seed(), now: t0, random: half)
        let account = m.accounts[alice]!
        #expect(kept.count == 5 && !kept.contains("http://Passport.NET/tb"))
        #expect(account.kinds(scopes: [.skype]) == kept.map(CredentialKind.site))
        let error = account.unavailable(.scope(.skype), scopes: [.skype])
        #expect(error?.code == .credentialUnavailable)
        #expect(error?.message.contains("signs in with rst") == true)
        #expect(account.unavailable(.site("unknown.example"), scopes: [.skype])?.code == .credentialUnavailable)
    }

    @Test("one job renews every site at once, and nothing is served before the store took all of them")
    func oneCallRenewsEverySite() throws {
        var m = machine()
        _ = m.add(seed(), now: t0, random: half)
        let jobs = m.due(now: t0, random: half)
        // Single flight per account: one RST.srf call, though five sites are due.
        try #require(jobs.count == 1)
        guard case .rstSites(let login, let password, let sites) = jobs[0].step else {
            Issue.record("expected an RST.srf step, got \(jobs[0].step)")
            return
        }
        #expect(login == alice.rawValue && password == Secret("pw"))
        #expect(sites == realm.rstSites)
        let effects = m.apply(.obtainedSites(jobs[0], all("one", at: t0)), now: t0, random: half)
        guard case .persist(_, let write) = effects.first, effects.count == 1 else {
            Issue.record("expected only a write first, got \(effects)")
            return
        }
        #expect(write.sites.count == 5)
        #expect(write.sites["messengerclear.live.com"]?.proofKey == Secret("K"))
        #expect(m.credential(CredentialKey(account: alice, kind: .site("contacts.msn.com"))) == nil)
        let installed = m.apply(.persisted(alice, failure: nil), now: t0, random: half)
        let published = installed.compactMap { effect -> String? in
            if case .publish(let key, let credential?) = effect {
                return "\(key.kind.name)=\(credential.value.exposed)"
            }
            return nil
        }
        #expect(published.count == 5)
        #expect(published.contains("messengerclear.live.com=one-messengerclear.live.com"))
        // All are due again at their refresh point: nothing now.
        #expect(m.due(now: t0.addingTimeInterval(1), random: half).isEmpty)
        #expect(!m.due(now: t0.addingTimeInterval(80), random: half).isEmpty)
    }

    @Test("tickets loaded from the store are served until their refresh point")
    func loadedTickets() {
        var m = machine()
        _ = m.add(seed(sites: all("disk", at: t0)), now: t0.addingTimeInterval(10), random: half)
        #expect(m.due(now: t0.addingTimeInterval(10), random: half).isEmpty)
        let clear = m.credential(CredentialKey(account: alice, kind: .site("messengerclear.live.com")))
        #expect(clear?.proofKey == Secret("K"))
    }

    @Test("a site the answer lacks is marked missing (unavailable, never asked for again); the others are installed")
    func missingSite() throws {
        var m = machine()
        _ = m.add(seed(), now: t0, random: half)
        let job = try #require(m.due(now: t0, random: half).first)
        guard case .site(let wanted) = job.key.kind else { throw BrokerError(.internalError, "not a site job") }
        #expect(m.wait(for: job.key, minValid: 0, now: t0) == nil)
        var partial = all("p", at: t0)
        partial[wanted] = nil
        let effects = m.apply(.obtainedSites(job, partial), now: t0, random: half)
        #expect(
            effects.contains {
                if case .deliver(let key, .failed(let error, _, final: true)) = $0 {
                    key == job.key && error.code == .credentialUnavailable
                } else {
                    false
                }
            })
        guard case .persist(_, let write) = effects.last else {
            Issue.record("expected a write of the others, got \(effects)")
            return
        }
        #expect(write.sites.count == 4 && write.sites[wanted] == nil)
        _ = m.apply(.persisted(alice, failure: nil), now: t0, random: half)
        let account = m.accounts[alice]!
        #expect(account.missingSites == [wanted])
        #expect(account.unavailable(.site(wanted), scopes: [.skype])?.message.contains("issues no ticket") == true)
        #expect(!account.kinds(scopes: [.skype]).contains(.site(wanted)))
        #expect(account.kinds(scopes: [.skype]).count == 4)
        for kind in account.kinds(scopes: [.skype]) {
            #expect(m.credential(CredentialKey(account: alice, kind: kind)) != nil)
        }
        // Nothing is due for the missing site: no RST.srf call until the others' refresh point.
        #expect(m.due(now: t0.addingTimeInterval(30), random: half).isEmpty)
        // A new enrollment asks for every site again.
        _ = m.add(seed(), now: t0, random: half)
        #expect(m.accounts[alice]!.missingSites.isEmpty)
    }

    @Test("a refused password: needs_reauth with the server's reason, and no further job")
    func refusedPassword() throws {
        var m = machine()
        _ = m.add(seed(), now: t0, random: half)
        let job = try #require(m.due(now: t0, random: half).first)
        let effects = m.apply(
            .failed(job, .passwordRefused(by: "RST.srf", reason: "wsse:FailedAuthentication: Authentication Failure")),
            now: t0,
            random: half)
        #expect(m.accounts[alice]!.state == .needsReauth)
        #expect(m.accounts[alice]!.stateReason?.contains("Authentication Failure") == true)
        #expect(effects.contains { if case .saveState(_, .needsReauth, _) = $0 { true } else { false } })
        for minutes in [1.0, 10, 60, 600] {
            #expect(m.due(now: t0.addingTimeInterval(minutes * 60), random: half).isEmpty)
        }
    }

    @Test("a Passport 1.4 refusal outside any job puts the account in needs_reauth and answers waiting reads")
    func passwordRefusedOnDemand() {
        var m = machine()
        _ = m.add(seed(sites: all("disk", at: t0)), now: t0, random: half)
        let key = CredentialKey(account: alice, kind: .site("messengerclear.live.com"))
        #expect(m.wait(for: key, minValid: 200, now: t0) == nil)
        let effects = m.passwordRefused(alice, reason: "the server refused the stored password: Passport 1.4", now: t0)
        #expect(m.accounts[alice]!.state == .needsReauth)
        #expect(
            effects.contains {
                if case .deliver(let k, .failed(let error, _, final: true)) = $0 {
                    k == key && error.code == .needsReauth
                } else {
                    false
                }
            })
        #expect(m.due(now: t0.addingTimeInterval(3600), random: half).isEmpty)
        // Said once: a second refusal changes nothing.
        #expect(m.passwordRefused(alice, reason: "again", now: t0).isEmpty)
    }
}
