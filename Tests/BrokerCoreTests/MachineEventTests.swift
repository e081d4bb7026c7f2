import BrokerCore
import Foundation
import Testing

/// The `announce` effects: what the event stream is told of each refresh and failure.
@Suite("Refresh machine: account events")
struct MachineEventTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let alice = AccountName(rawValue: "alice@example.com")!
    let half: () -> Double = { 0.5 }

    func machine() -> RefreshMachine { RefreshMachine(scopes: [.ssl], realms: ["live"]) }

    func seed() -> AccountSeed {
        AccountSeed(name: alice, realm: "live", login: alice.rawValue, refreshToken: Secret("rt-secret"))
    }

    func announced(_ effects: [Effect]) -> [AccountEvent] {
        effects.compactMap { if case .announce(let event) = $0 { event } else { nil } }
    }

    @Test("a refresh is announced once it is written, with the credential and its next refresh; no secret")
    func refreshed() throws {
        var m = machine()
        _ = m.add(seed(), now: t0, random: half)
        let job = try #require(m.due(now: t0, random: half).first)
        let token = AccessToken(
            value: Secret("at-secret"), scope: .ssl, obtainedAt: t0, expiresAt: t0.addingTimeInterval(3600))
        let granted = m.apply(
            .granted(job, TokenGrant(accessToken: token, refreshToken: nil, userID: nil)), now: t0, random: half)
        #expect(announced(granted).isEmpty)
        let events = announced(m.apply(.persisted(alice, failure: nil), now: t0, random: half))
        #expect(
            events == [
                AccountEvent(
                    .refreshed, account: alice, credential: .scope(.ssl), at: t0,
                    nextRefreshAt: m.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt)
            ])
        #expect(events[0].nextRefreshAt! > t0.addingTimeInterval(1800))
        #expect(!"\(events)".contains("secret"))
    }

    @Test("a transient failure is refresh_failed with the next attempt; a revoked grant is needs_reauth")
    func failures() throws {
        var m = machine()
        _ = m.add(seed(), now: t0, random: half)
        let job = try #require(m.due(now: t0, random: half).first)
        let failed = announced(m.apply(.failed(job, .transient("the server answered 503")), now: t0, random: half))
        #expect(failed.count == 1)
        #expect(failed.first?.change == .refreshFailed && failed.first?.errorCode == .temporarilyUnavailable)
        #expect(failed.first?.message == "the server answered 503")
        #expect(failed.first?.nextRefreshAt == m.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt)

        let retry = try #require(m.due(now: t0.addingTimeInterval(600), random: half).first)
        let revoked = announced(
            m.apply(.failed(retry, .grantRevoked("invalid_grant")), now: t0.addingTimeInterval(600), random: half))
        #expect(revoked.count == 1)
        #expect(revoked.first?.change == .needsReauth && revoked.first?.errorCode == .needsReauth)
        #expect(revoked.first?.credential == .scope(.ssl) && revoked.first?.nextRefreshAt == nil)
        #expect(revoked.first?.at == t0.addingTimeInterval(600))
        #expect(m.nextRefresh(of: alice) == nil)
    }
}
