import BrokerCore
import Foundation
import Testing

/// The per-account state is kept small (every account holds it): a table instead of a
/// dictionary, and the rarely set fields boxed. These tests hold the values to what they were.
@Suite("Compact per-account state")
struct CompactStateTests {
    @Test("a kind table behaves as a dictionary of the same entries")
    func kindTableIsADictionary() {
        var table = KindTable<Int>()
        var dictionary: [CredentialKind: Int] = [:]
        let kinds: [CredentialKind] =
            Scope.allCases.map(CredentialKind.scope) + [
                .skypetoken, .uic, .ticket, .cookies, .skylogin, .site("a"), .site("b"),
            ]
        var random = SystemRandomNumberGenerator()
        for step in 0..<2_000 {
            let kind = kinds.randomElement(using: &random)!
            let value: Int? = Int.random(in: 0..<4, using: &random) == 0 ? nil : step
            table[kind] = value
            dictionary[kind] = value
            #expect(table[kind] == dictionary[kind])
            #expect(table.count == dictionary.count && table.isEmpty == dictionary.isEmpty)
        }
        #expect(Set(table.keys) == Set(dictionary.keys))
        #expect(table.values.sorted() == dictionary.values.sorted())
        #expect(Dictionary(uniqueKeysWithValues: table.map { ($0.kind, $0.value) }) == dictionary)
        table.updateEach { _, value in value += 1 }
        #expect(table.values.sorted() == dictionary.values.map { $0 + 1 }.sorted())
    }

    @Test("every kind, RST sites included, comes back from its four-byte code, and codes differ by kind")
    func kindCodes() {
        let kinds: [CredentialKind] =
            Scope.allCases.map(CredentialKind.scope) + [.skypetoken, .uic, .ticket, .cookies, .skylogin]
            + ["http://Passport.NET/tb", "messengerclear.live.com", "", "ü", "a", "b"].map(CredentialKind.site)
        for kind in kinds { #expect(KindCode(kind).kind == kind) }
        #expect(Set(kinds.map(KindCode.init)).count == kinds.count)
        #expect(KindCode(.site("a")) == KindCode(.site("a")))
        #expect(MemoryLayout<KindCode>.size == 4)
    }

    @Test("looking up a site address nobody stored interns nothing and finds nothing")
    func lookupsDoNotIntern() {
        var table = KindTable<Int>()
        table[.site("stored.example")] = 1
        let unknown = CredentialKind.site("never-stored-\(UInt64.random(in: 0...UInt64.max))")
        #expect(table[unknown] == nil)
        table[unknown] = nil
        #expect(KindCode(existing: unknown) == nil)
        #expect(KindCode(existing: .site("stored.example")) == KindCode(.site("stored.example")))
        #expect(KindCode(existing: .scope(.ssl)) == KindCode(.scope(.ssl)))
        #expect(table.count == 1 && table[.site("stored.example")] == 1)
    }

    @Test("tables are equal with the same entries in any order")
    func kindTableEquality() {
        let a: KindTable<Int> = [.skypetoken: 1, .uic: 2]
        var b = KindTable<Int>()
        b[.uic] = 2
        b[.skypetoken] = 1
        #expect(a == b)
        b[.uic] = 3
        #expect(a != b)
        b[.uic] = nil
        #expect(a != b)
    }

    @Test("a credential's rarely set fields read back as set, and compare by value")
    func credentialExtras() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let plain = Credential(value: Secret("v"), obtainedAt: now, expiresAt: now + 60)
        #expect(plain.refreshBy == nil && plain.issuedAt == nil && plain.proofKey == nil && plain.subject == nil)
        var full = Credential(
            value: Secret("v"), obtainedAt: now, expiresAt: now + 60, refreshBy: now + 30, issuedAt: now - 5,
            proofKey: Secret("k"), subject: "live:someone")
        #expect(full.refreshBy == now + 30 && full.issuedAt == now - 5)
        #expect(full.proofKey == Secret("k") && full.subject == "live:someone")
        #expect(full != plain)
        let copy = full
        full.subject = "live:other"
        #expect(copy.subject == "live:someone" && full.subject == "live:other")
        full.refreshBy = nil
        full.issuedAt = nil
        full.proofKey = nil
        full.subject = nil
        #expect(full == plain && full.hashValue == plain.hashValue)
    }

    @Test("a schedule's failure fields read back as set, and count in its equality")
    func scheduleTrouble() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var schedule = CredentialSchedule(dueAt: now)
        #expect(schedule.failures == 0 && schedule.lastError == nil && schedule.backoffUntil == nil)
        let clean = schedule
        schedule.failures = 2
        schedule.lastError = BrokerError(.upstreamError, "down")
        schedule.backoffUntil = now + 30
        #expect(schedule.failures == 2 && schedule.lastError?.message == "down" && schedule.backoffUntil == now + 30)
        #expect(schedule != clean)
        let copy = schedule
        schedule.failures = 0
        schedule.lastError = nil
        schedule.backoffUntil = nil
        #expect(schedule == clean && copy.failures == 2)
    }

    @Test("an account's rarely set fields read back as set, copies keep their own, and the schedule stays small")
    func accountRareFields() {
        var account = AccountSchedule(
            realm: "escargot", login: "bob@example.com", state: .active, stateReason: nil, refreshToken: nil,
            password: nil, ticketMethod: .oauth)
        #expect(account.password == nil && account.rstSites == nil && account.missingSites.isEmpty)
        #expect(account.stateReason == nil && account.loginHash == nil && account.skyloginKey == nil)
        #expect(account.cookiesLost == nil)
        account.password = Secret("pw")
        account.rstSites = [RSTSite(address: "messenger.msn.com", policy: "?id=507")]
        account.missingSites = ["contacts.msn.com"]
        account.stateReason = "refused"
        account.loginHash = Secret("hash")
        account.skyloginKey = Secret("key")
        account.cookiesLost = "expired"
        let copy = account
        account.missingSites.insert("spaces.live.com")
        account.password = nil
        #expect(copy.password?.exposed == "pw" && account.password == nil)
        #expect(copy.missingSites == ["contacts.msn.com"])
        #expect(account.missingSites == ["contacts.msn.com", "spaces.live.com"])
        #expect(account.rstSites?.map(\.address) == ["messenger.msn.com"] && account.stateReason == "refused")
        #expect(account.loginHash?.exposed == "hash" && account.skyloginKey?.exposed == "key")
        #expect(account.cookiesLost == "expired")
        // Inline: two strings, the refresh token, the credentials, the two write boxes (the
        // unsaved write keeps its retry time), the backlog time, the generation, the rare box and
        // four one-byte fields.
        #expect(MemoryLayout<AccountSchedule>.size <= 100, "\(MemoryLayout<AccountSchedule>.size) bytes")
    }
}
