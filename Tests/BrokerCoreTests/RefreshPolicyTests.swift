import BrokerCore
import Foundation
import Testing

@Suite("Refresh policy decisions")
struct RefreshPolicyTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("refresh at the refresh point, jittered both ways, never inside the safety margin")
    func nextRefresh() {
        var policy = RefreshPolicy()
        policy.safetyMargin = 1
        let expires = t0.addingTimeInterval(100)
        #expect(policy.nextRefresh(obtainedAt: t0, expiresAt: expires, random: 0.5) == t0.addingTimeInterval(75))
        #expect(policy.nextRefresh(obtainedAt: t0, expiresAt: expires, random: 0) == t0.addingTimeInterval(70))
        #expect(
            abs(policy.nextRefresh(obtainedAt: t0, expiresAt: expires, random: 1).timeIntervalSince(t0) - 80) < 1e-9)
        policy.safetyMargin = 60
        #expect(policy.nextRefresh(obtainedAt: t0, expiresAt: expires, random: 0.5) == t0.addingTimeInterval(40))
    }

    @Test("backoff doubles to the cap and stays before expiry")
    func backoff() {
        var policy = RefreshPolicy()
        policy.backoffStart = 1
        policy.backoffCap = 8
        let delays = (1...6).map {
            policy.retryAfterFailure(failures: $0, now: t0, expiresAt: nil, random: 1).timeIntervalSince(t0)
        }
        #expect(delays == [1, 2, 4, 8, 8, 8])
        let half = policy.retryAfterFailure(failures: 3, now: t0, expiresAt: nil, random: 0).timeIntervalSince(t0)
        #expect(half == 2)
        let nearExpiry = policy.retryAfterFailure(failures: 10, now: t0, expiresAt: t0.addingTimeInterval(6), random: 1)
        #expect(nearExpiry.timeIntervalSince(t0) == 3)
    }

    @Test("a 429 rests for Retry-After, or the default")
    func rateLimit() {
        let policy = RefreshPolicy()
        #expect(policy.rateLimitRest(retryAfter: 2, now: t0) == t0.addingTimeInterval(2))
        #expect(policy.rateLimitRest(retryAfter: nil, now: t0) == t0.addingTimeInterval(300))
    }

    @Test("fresh needs the margin or min_valid; servable needs time left and min_valid")
    func freshness() {
        var policy = RefreshPolicy()
        policy.safetyMargin = 10
        let token = AccessToken(
            value: Secret("x"), scope: .skype, obtainedAt: t0, expiresAt: t0.addingTimeInterval(100))
        #expect(policy.isFresh(token, now: t0.addingTimeInterval(90), minValid: 0))
        #expect(!policy.isFresh(token, now: t0.addingTimeInterval(91), minValid: 0))
        #expect(!policy.isFresh(token, now: t0, minValid: 101))
        #expect(policy.isServable(token, now: t0.addingTimeInterval(99), minValid: 0))
        #expect(!policy.isServable(token, now: t0.addingTimeInterval(100), minValid: 0))
        #expect(!policy.isServable(token, now: t0.addingTimeInterval(50), minValid: 60))
    }
}

@Suite("Scopes, names and access")
struct DomainTests {
    @Test("scopes resolve from full names and aliases")
    func scopes() {
        for scope in Scope.allCases {
            #expect(Scope(nameOrAlias: scope.alias) == scope)
            #expect(Scope(nameOrAlias: scope.rawValue) == scope)
        }
        #expect(Scope(nameOrAlias: "email") == nil)
    }

    @Test("account names are restricted to a safe alphabet")
    func names() {
        #expect(AccountName(rawValue: "alice@example.com") != nil)
        #expect(AccountName(rawValue: "") == nil)
        #expect(AccountName(rawValue: "a/b") == nil)
        #expect(AccountName(rawValue: "..%2f") == nil)
        #expect(AccountName(rawValue: String(repeating: "a", count: 129)) == nil)
    }

    @Test("secrets never show in descriptions")
    func secretRedaction() {
        let secret = Secret("EwAsupersecret")
        #expect(!"\(secret)".contains("supersecret"))
        #expect(!String(reflecting: secret).contains("supersecret"))
        let token = AccessToken(value: secret, scope: .skype, obtainedAt: Date(), expiresAt: Date())
        #expect(!"\(token)".contains("supersecret"))
    }

    @Test("root and admin groups administer; readers come from the rules; groups include supplementary ones")
    func access() {
        let alice = AccountName(rawValue: "alice")!
        let bob = AccountName(rawValue: "bob")!
        let policy = AccessPolicy(
            adminGroups: [50],
            rules: [
                AccessRule(accounts: ["alice"], uids: [1000], groups: [60]), AccessRule(accounts: ["*"], uids: [2000]),
            ])
        #expect(policy.isAdmin(Peer(pid: 1, uid: 0, gid: 0)))
        #expect(policy.isAdmin(Peer(pid: 1, uid: 5, gid: 5, groups: [50])))
        #expect(!policy.isAdmin(Peer(pid: 1, uid: 1000, gid: 1000)))
        #expect(policy.mayRead(Peer(pid: 1, uid: 1000, gid: 1000), account: alice))
        #expect(!policy.mayRead(Peer(pid: 1, uid: 1000, gid: 1000), account: bob))
        #expect(policy.mayRead(Peer(pid: 1, uid: 7, gid: 60), account: alice))
        #expect(policy.mayRead(Peer(pid: 1, uid: 7, gid: 7, groups: [60]), account: alice))
        #expect(policy.mayRead(Peer(pid: 1, uid: 2000, gid: 2000), account: bob))
        #expect(!policy.mayRead(Peer(pid: 1, uid: 3000, gid: 3000), account: alice))
    }

    @Test("the daemon's own uid administers its daemon, as root does; other uids still need a group or a rule")
    func daemonOwner() {
        let alice = AccountName(rawValue: "alice")!
        let policy = AccessPolicy(rules: [AccessRule(accounts: ["alice"], uids: [1001])])
        let owner = Peer(pid: 1, uid: 1000, gid: 1000)
        // A policy not yet given to a daemon knows no owner.
        #expect(!policy.isAdmin(owner))
        let running = policy.running(as: 1000)
        #expect(running.isAdmin(owner))
        #expect(running.mayRead(owner, account: alice))
        #expect(running.mayReadMetrics(owner))
        #expect(running.isAdmin(Peer(pid: 1, uid: 0, gid: 0)))
        #expect(!running.isAdmin(Peer(pid: 1, uid: 1001, gid: 1001)))
        #expect(running.mayRead(Peer(pid: 1, uid: 1001, gid: 1001), account: alice))
        #expect(!running.isAdmin(Peer(pid: 1, uid: 1002, gid: 1000)), "the daemon's group is not an admin group")
        #expect(!policy.running(as: 0).isAdmin(owner))
    }

    @Test("a realm follows only its own origins, over https unless allowed")
    func origins() throws {
        let realm = Realm(
            name: "r", loginBase: "https://login.example:8443", userInitializationBase: "https://ui.example",
            skypetokenBase: "https://api.example")
        #expect(realm.mayFollow("https://login.example:8443/ppsecure/post.srf?x=1"))
        #expect(realm.mayFollow("https://LOGIN.example:8443/other"))
        #expect(!realm.mayFollow("https://login.example/ppsecure/post.srf"))
        #expect(!realm.mayFollow("https://evil.example:8443/"))
        #expect(!realm.mayFollow("http://login.example:8443/"))
        let insecure = Realm(name: "i", loginBase: "http://127.0.0.1:8080", allowInsecureHTTP: true)
        #expect(insecure.mayFollow("http://127.0.0.1:8080/x"))
        #expect(throws: BrokerError.self) { try Realm(name: "bad", loginBase: "http://x.example").validate() }
    }
}
