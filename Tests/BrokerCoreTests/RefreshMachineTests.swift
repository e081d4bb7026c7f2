import BrokerCore
import Foundation
import Testing

/// The refresh specification, one rule a test, on the pure machine: fixed `now`, fixed random
/// samples, no processes, sockets or sleeps. The executor's part is played by hand: take the
/// jobs `due` hands out, report an outcome, look at the effects.
@Suite("Refresh machine: the refresh specification")
struct RefreshMachineTests {
    let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    let alice = AccountName(rawValue: "alice@example.com")!
    let bob = AccountName(rawValue: "bob@example.com")!
    let half: () -> Double = { 0.5 }

    func machine(scopes: [Scope] = [.skype], policy: (inout RefreshPolicy) -> Void = { _ in }) -> RefreshMachine {
        var p = RefreshPolicy()
        policy(&p)
        return RefreshMachine(policy: p, scopes: scopes, realms: ["live"])
    }

    func token(_ scope: Scope, _ value: String, at: Date, lifetime: TimeInterval = 3600) -> AccessToken {
        AccessToken(value: Secret(value), scope: scope, obtainedAt: at, expiresAt: at.addingTimeInterval(lifetime))
    }

    func seed(
        _ name: AccountName, tokens: [AccessToken] = [], password: String? = nil, cookies: (Secret, Date?)? = nil,
        method: TicketMethod = .oauth
    ) -> AccountSeed {
        AccountSeed(
            name: name, realm: "live", login: name.rawValue, refreshToken: Secret("rt-\(name)"),
            password: password.map(Secret.init),
            ticketMethod: method, accessTokens: tokens, cookies: cookies.map { (value: $0.0, expiresAt: $0.1) })
    }

    func key(_ name: AccountName, _ kind: CredentialKind) -> CredentialKey { CredentialKey(account: name, kind: kind) }

    /// Reports a grant for a refreshScope job and lets the store take it.
    func grant(_ m: inout RefreshMachine, _ job: Job, _ token: AccessToken, rotated: String? = nil, now: Date)
        -> [Effect]
    {
        var effects = m.apply(
            .granted(job, TokenGrant(accessToken: token, refreshToken: rotated.map(Secret.init), userID: nil)),
            now: now, random: half)
        #expect(effects.contains { if case .persist = $0 { true } else { false } })
        effects += m.apply(.persisted(job.key.account, failure: nil), now: now, random: half)
        return effects
    }

    /// A skypetoken or UIC obtained: the machine asks for it to be written (and publishes
    /// nothing yet), then installs it once the store took it.
    func obtain(_ m: inout RefreshMachine, _ job: Job, _ credential: Credential, now: Date) -> [Effect] {
        let first = m.apply(.obtained(job, credential), now: now, random: half)
        guard case .persist(_, let write) = first.first, first.count == 1 else {
            Issue.record("expected the write first, got \(first)")
            return first
        }
        #expect(write.derived[job.key.kind] == credential)
        #expect(published(first, job.key) == nil)
        return first + m.apply(.persisted(job.key.account, failure: nil), now: now, random: half)
    }

    func runs(_ effects: [Effect]) -> [Job] {
        effects.compactMap { effect -> Job? in
            if case .run(let job) = effect { return job }
            return nil
        }
    }

    func published(_ effects: [Effect], _ key: CredentialKey) -> Credential?? {
        var last: Credential??
        for case .publish(let k, let credential) in effects where k == key { last = .some(credential) }
        return last
    }

    // MARK: - Refresh point, jitter, safety margin

    @Test("a credential is due at 75% of its lifetime, ±5% with the random sample, and no job is handed out before")
    func refreshPointAndJitter() {
        for (sample, point) in [(0.0, 0.70), (0.5, 0.75), (1.0, 0.80)] {
            var m = machine(scopes: [.ssl])
            _ = m.add(seed(alice, tokens: [token(.ssl, "a", at: t0)]), now: t0, random: { sample })
            let due = m.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt
            #expect(abs(due.timeIntervalSince(t0) - 3600 * point) < 1e-6)
            #expect(m.due(now: due.addingTimeInterval(-1), random: half).isEmpty)
            #expect(m.due(now: due, random: half).map(\.key) == [key(alice, .scope(.ssl))])
        }
    }

    @Test("never later than the safety margin before expiry, and a read inside the margin waits for a refresh")
    func safetyMargin() {
        var m = machine { $0.safetyMargin = 60 }
        // A 100 s token: 75% would be 75 s, but the margin says 40 s at the latest.
        _ = m.add(seed(alice, tokens: [token(.skype, "a", at: t0, lifetime: 100)]), now: t0, random: half)
        #expect(m.accounts[alice]!.credentials[.scope(.skype)]!.dueAt == t0.addingTimeInterval(40))
        // 70 s left: answered from what is held.
        #expect(
            m.wait(for: key(alice, .scope(.skype)), minValid: 0, now: t0.addingTimeInterval(30))
                == .refreshed(Credential(token(.skype, "a", at: t0, lifetime: 100))))
        // ... unless the read asks for more than that.
        #expect(m.wait(for: key(alice, .scope(.skype)), minValid: 80, now: t0.addingTimeInterval(30)) == nil)
        // 50 s left: inside the margin, so a read is not answered from what is held; it waits.
        #expect(m.wait(for: key(alice, .scope(.skype)), minValid: 0, now: t0.addingTimeInterval(50)) == nil)
        #expect(m.waiting[key(alice, .scope(.skype))] == 2)
    }

    // MARK: - Backoff

    @Test("failures back off exponentially to the cap, never past expiry while the token is valid")
    func backoff() {
        var m = machine(scopes: [.ssl]) {
            $0.backoffStart = 1
            $0.backoffCap = 8
        }
        _ = m.add(seed(alice), now: t0, random: half)
        var now = t0
        var delays: [TimeInterval] = []
        for _ in 1...6 {
            let job = m.due(now: now, random: half).first { $0.key.kind == .scope(.ssl) }!
            _ = m.apply(.failed(job, .transient("HTTP 503")), now: now, random: { 1 })
            let due = m.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt
            delays.append(due.timeIntervalSince(now))
            #expect(m.accounts[alice]!.credentials[.scope(.ssl)]!.backoffUntil == due)
            now = due
        }
        #expect(delays == [1, 2, 4, 8, 8, 8])
        #expect(m.accounts[alice]!.credentials[.scope(.ssl)]!.failures == 6)

        // While the token held is valid, every retry comes before it runs out, however many failures.
        var n = machine(scopes: [.ssl]) {
            $0.backoffStart = 1
            $0.backoffCap = 300
            $0.safetyMargin = 1
        }
        let expires = t0.addingTimeInterval(100)
        _ = n.add(seed(alice, tokens: [token(.ssl, "a", at: t0, lifetime: 100)]), now: t0, random: half)
        var at = n.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt
        for _ in 1...8 {
            guard let job = n.due(now: at, random: half).first else {
                Issue.record("nothing due at \(at)")
                return
            }
            _ = n.apply(.failed(job, .transient("reset")), now: at, random: { 1 })
            let next = n.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt
            #expect(next > at && next < expires)
            at = next
        }
    }

    // MARK: - 429

    @Test("a 429 rests that endpoint of the realm for Retry-After, for every account, and no job calls it meanwhile")
    func rateLimitRestsTheRealm() {
        var m = machine(scopes: [.skype, .ssl])
        _ = m.add(seed(alice), now: t0, random: half)
        _ = m.add(seed(bob), now: t0, random: half)
        let jobs = m.due(now: t0, random: half)
        #expect(Set(jobs.map(\.key.account)) == [alice, bob])
        let aliceJob = jobs.first { $0.key.account == alice }!
        let effects = m.apply(.failed(aliceJob, .rateLimited(retryAfter: 120)), now: t0, random: half)
        #expect(effects.contains { if case .count(.rateLimited) = $0 { true } else { false } })
        #expect(m.rest(realm: "live", kind: .scope(.ssl)) == t0.addingTimeInterval(120))
        let bobJob = jobs.first { $0.key.account == bob }!
        _ = m.apply(.failed(bobJob, .transient("reset")), now: t0, random: half)
        // Nothing for the token endpoint until the rest is over, for alice nor for bob.
        #expect(m.due(now: t0.addingTimeInterval(60), random: half).isEmpty)
        #expect(m.nextWake <= t0.addingTimeInterval(120))
        let after = m.due(now: t0.addingTimeInterval(121), random: half)
        #expect(Set(after.map(\.key.account)) == [alice, bob])
    }

    @Test("reads waiting during a rest do not pile up entries in the backlog: each account is put back once")
    func restWithWaitingReads() {
        var m = machine(scopes: [.ssl])
        _ = m.add(seed(alice), now: t0, random: half)
        _ = m.add(seed(bob, tokens: [token(.ssl, "b", at: t0)]), now: t0, random: half)
        let job = m.due(now: t0, random: half).first { $0.key.account == alice }!
        _ = m.apply(.failed(job, .rateLimited(retryAfter: 600)), now: t0, random: half)
        // Bob's token has 3600 s left; a read that wants more waits, and makes it due at once.
        for i in 1...500 {
            let now = t0.addingTimeInterval(Double(i) * 0.5)
            #expect(m.wait(for: key(bob, .scope(.ssl)), minValid: 7200, now: now) == nil)
            #expect(m.due(now: now, random: half).isEmpty)
        }
        #expect(m.backlogCount <= 4, "\(m.backlogCount) entries for two credentials")
        let after = m.due(now: t0.addingTimeInterval(601), random: half)
        #expect(Set(after.map(\.key)) == [key(alice, .scope(.ssl)), key(bob, .scope(.ssl))])
    }

    @Test("entries left behind when a credential is moved earlier are cleared once they are most of the backlog")
    func staleEntriesCompacted() {
        var m = machine(scopes: [.ssl])
        let day: TimeInterval = 86_400
        _ = m.add(seed(alice, tokens: [token(.ssl, "a", at: t0, lifetime: day)]), now: t0, random: half)
        var now = t0
        for _ in 0..<10_000 {
            now = now.addingTimeInterval(1)
            // Its refresh point, most of a day away, is queued; then a read that wants more than
            // is left makes it due now, and the later entry stays behind.
            #expect(m.due(now: now, random: half).isEmpty)
            #expect(m.wait(for: key(alice, .scope(.ssl)), minValid: 2 * day, now: now) == nil)
            guard let job = m.due(now: now, random: half).first else {
                Issue.record("no job for the waiting read")
                return
            }
            _ = grant(&m, job, token(.ssl, "a", at: now, lifetime: day), now: now)
        }
        // 10,000 left behind without clearing; cleared each time they pass 4,096 and half.
        #expect(m.backlogCount <= 4100, "\(m.backlogCount) entries for one credential")
        #expect(m.due(now: now, random: half).isEmpty)
        #expect(m.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt > now.addingTimeInterval(day / 2))
    }

    @Test("the rebuilt backlog has room for half as many entries again, so refreshing does not double its array")
    func backlogRoom() {
        var m = machine(scopes: [.ssl, .skype])
        for i in 0..<2_500 {
            _ = m.add(seed(AccountName(rawValue: "a\(i)@example.com")!), now: t0, random: half)
        }
        _ = m.due(now: t0.addingTimeInterval(-1), random: half)
        // One entry per account, not per credential.
        let entries = m.backlogCount
        #expect(entries == 2_500)
        #expect(m.backlogCapacity >= entries + entries / 2, "\(m.backlogCapacity) for \(entries) entries")
    }

    // MARK: - invalid_grant

    @Test("invalid_grant puts that account, and only that one, in needs_reauth; it is saved and waiting reads are told")
    func invalidGrant() {
        var m = machine()
        _ = m.add(seed(alice), now: t0, random: half)
        _ = m.add(seed(bob), now: t0, random: half)
        #expect(m.wait(for: key(alice, .scope(.skype)), minValid: 0, now: t0) == nil)
        let jobs = m.due(now: t0, random: half)
        let aliceJob = jobs.first { $0.key.account == alice && $0.key.kind == .scope(.skype) }!
        let effects = m.apply(.failed(aliceJob, .grantRevoked("invalid_grant")), now: t0, random: half)
        #expect(m.accounts[alice]!.state == .needsReauth)
        #expect(m.accounts[bob]!.state == .active)
        #expect(effects.contains { if case .saveState(alice, .needsReauth, _) = $0 { true } else { false } })
        #expect(effects.contains { if case .count(.needsReauth) = $0 { true } else { false } })
        let delivered = effects.compactMap {
            if case .deliver(let k, .failed(let error, _, let final)) = $0, k.account == alice {
                (error, final)
            } else {
                nil
            }
        }
        #expect(delivered.count == 1 && delivered[0].0.code == .needsReauth && delivered[0].1)
        // No more jobs for alice; bob's go on.
        let later = m.due(now: t0.addingTimeInterval(1), random: half)
        #expect(!later.contains { $0.key.account == alice })
        #expect(later.contains { $0.key.account == bob } || m.running.contains(bob))
    }

    // MARK: - Dependencies

    @Test(
        "the skypetoken needs a fresh skype.com token: that is refreshed first, written, and the skypetoken made from it"
    )
    func skypetokenFollowsSkypeScope() {
        var m = machine()
        _ = m.add(seed(alice), now: t0, random: half)
        // One job per account: the skype scope or the skypetoken, whichever comes first.
        #expect(m.due(now: t0, random: half).count == 1)
        let step = m.firstStep(key(alice, .skypetoken), m.accounts[alice]!, now: t0)
        #expect(step == .refreshScope(.skype, refreshToken: Secret("rt-\(alice)")))
        let job = Job(key: key(alice, .skypetoken), realm: "live", step: step, dueAt: t0)
        let effects = grant(&m, job, token(.skype, "skype-1", at: t0), now: t0)
        // Served and then the next step with the very token just obtained: nothing is read back.
        #expect(published(effects, key(alice, .scope(.skype))) == .some(Credential(token(.skype, "skype-1", at: t0))))
        let next = runs(effects)
        #expect(next.map(\Job.step) == [Step.skypetoken(accessToken: Secret("skype-1"))])
        #expect(m.running.contains(alice))
        let skypetoken = Credential(value: Secret("st"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(86400))
        let done = obtain(&m, next[0], skypetoken, now: t0)
        #expect(published(done, key(alice, .skypetoken)) == .some(skypetoken))
        #expect(!m.running.contains(alice))

        // A refused skypetoken gets a new skype.com token and one more try, not more.
        let refused = m.apply(
            .failed(next[0], .rejected(code: "skypetoken_40120", description: "bad token")), now: t0, random: half)
        guard case .run(let retry) = refused.first else {
            Issue.record("no retry after a refused skypetoken")
            return
        }
        #expect(retry.step == .refreshScope(.skype, refreshToken: Secret("rt-\(alice)")) && retry.retried)
        var again = retry
        again.step = .skypetoken(accessToken: Secret("skype-2"))
        let final = m.apply(
            .failed(again, .rejected(code: "skypetoken_40120", description: "bad token")), now: t0, random: half)
        #expect(!final.contains { if case .run = $0 { true } else { false } })
    }

    @Test("the skypetoken is due again as soon as the skype.com token it is made from is replaced")
    func skypetokenDueWithItsToken() {
        var m = machine()
        _ = m.add(seed(alice, tokens: [token(.skype, "old", at: t0)]), now: t0, random: half)
        let made = Job(
            key: key(alice, .skypetoken), realm: "live", step: .skypetoken(accessToken: Secret("old")), dueAt: t0)
        _ = obtain(
            &m, made, Credential(value: Secret("st"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(86400)), now: t0)
        #expect(m.accounts[alice]!.credentials[.skypetoken]!.dueAt > t0.addingTimeInterval(3600))
        let job = Job(
            key: key(alice, .scope(.skype)), realm: "live", step: .refreshScope(.skype, refreshToken: Secret("rt")),
            dueAt: t0)
        _ = grant(&m, job, token(.skype, "new", at: t0.addingTimeInterval(10)), now: t0.addingTimeInterval(10))
        // Due when the skype.com token's refresh was (t0), so never later than now.
        #expect(m.accounts[alice]!.credentials[.skypetoken]!.dueAt == t0)
        // A token refreshed ahead of its point (for a read) makes the skypetoken due now, not at
        // that later point.
        let early = Job(
            key: key(alice, .scope(.skype)), realm: "live", step: .refreshScope(.skype, refreshToken: Secret("rt")),
            dueAt: t0.addingTimeInterval(3000))
        _ = grant(&m, early, token(.skype, "newer", at: t0.addingTimeInterval(20)), now: t0.addingTimeInterval(20))
        #expect(m.accounts[alice]!.credentials[.skypetoken]!.dueAt == t0.addingTimeInterval(20))
    }

    @Test(
        "behind a backlog of late refreshes, the skypetoken comes up among the refreshes due when its skype.com token was, not after every one due since"
    )
    func skypetokenKeepsItsPlaceInTheBacklog() {
        // One job at a time, and both accounts late: the daemon is bound by throughput.
        var m = machine(scopes: [.skype, .ssl]) { $0.maxConcurrentRefreshes = 1 }
        // alice's skype.com token is due at 2,700 s, bob's tokens at 2,800 s (75% of an hour).
        _ = m.add(
            seed(alice, tokens: [token(.skype, "a", at: t0), token(.ssl, "a", at: t0.addingTimeInterval(600))]),
            now: t0,
            random: half)
        let made = Job(
            key: key(alice, .skypetoken), realm: "live", step: .skypetoken(accessToken: Secret("a")), dueAt: t0)
        _ = obtain(
            &m, made, Credential(value: Secret("st"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(86400)), now: t0)
        _ = m.add(
            seed(
                bob,
                tokens: [
                    token(.skype, "b", at: t0.addingTimeInterval(100)),
                    token(.ssl, "b", at: t0.addingTimeInterval(100)),
                ]),
            now: t0, random: half)
        let bobs = Job(
            key: key(bob, .skypetoken), realm: "live", step: .skypetoken(accessToken: Secret("b")), dueAt: t0,
            generation: m.accounts[bob]!.generation)
        _ = obtain(
            &m, bobs, Credential(value: Secret("st"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(86400)), now: t0)
        let now = t0.addingTimeInterval(3000)
        let first = m.due(now: now, random: half)
        #expect(first.map(\.key) == [key(alice, .scope(.skype))])
        guard let job = first.first else { return }
        _ = grant(&m, job, token(.skype, "a2", at: now), now: now)
        // alice's skypetoken was due with her skype.com token (2,700 s), before bob's 2,800 s.
        let second = m.due(now: now, random: half)
        #expect(second.map(\.key) == [key(alice, .skypetoken)])
        #expect(second.map(\.step) == [.skypetoken(accessToken: Secret("a2"))])
    }

    @Test(
        "the UIC needs unexpired cookies: expired ones are renewed by password sign-in first, then User/Initialization with the new ones"
    )
    func uicNeedsCookies() {
        var m = machine()
        _ = m.add(
            seed(alice, password: "pw", cookies: (Secret("old-cookies"), t0.addingTimeInterval(-1))), now: t0,
            random: half)
        #expect(m.accounts[alice]!.kinds(scopes: [.skype]).contains(.uic))
        let step = m.firstStep(key(alice, .uic), m.accounts[alice]!, now: t0)
        #expect(step == .passwordSignIn(login: alice.rawValue, password: Secret("pw")))
        // With valid cookies, the UIC is asked for directly.
        var n = machine()
        _ = n.add(seed(alice, cookies: (Secret("c"), t0.addingTimeInterval(3600))), now: t0, random: half)
        #expect(n.firstStep(key(alice, .uic), n.accounts[alice]!, now: t0) == .userInitialization(cookies: Secret("c")))
        // Silent sign-in refused: the stored password is tried next, in the same job.
        let job = Job(key: key(alice, .cookies), realm: "live", step: .silentSignIn(cookies: Secret("c")), dueAt: t0)
        let refused = m.apply(
            .failed(job, .rejected(code: "cookies_refused", description: "no")), now: t0, random: half)
        #expect(runs(refused).map(\Job.step) == [Step.passwordSignIn(login: alice.rawValue, password: Secret("pw"))])
    }

    @Test(
        "loaded from the store, a skypetoken or UIC it lacks is due with the credential it is made from; a stored one until its own refresh point; enrolled, at once"
    )
    func derivedAtLoad() {
        let cookies = (Secret("c"), Optional(t0.addingTimeInterval(7200)))
        var loaded = machine()
        _ = loaded.add(
            seed(alice, tokens: [token(.skype, "skype-1", at: t0)], cookies: cookies), now: t0, random: half,
            fromStore: true)
        let account = loaded.accounts[alice]!
        #expect(account.credentials[.scope(.skype)]!.dueAt > t0.addingTimeInterval(1800))
        #expect(account.credentials[.skypetoken]!.dueAt == account.credentials[.scope(.skype)]!.dueAt)
        #expect(account.credentials[.uic]!.dueAt == account.credentials[.cookies]!.dueAt)
        #expect(loaded.due(now: t0.addingTimeInterval(60), random: half).isEmpty)

        // Stored ones are served, and due at their own refresh point.
        var stored = seed(alice, tokens: [token(.skype, "skype-1", at: t0)], cookies: cookies)
        let skypetoken = Credential(value: Secret("st"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(86_400))
        stored.derived = [.skypetoken: skypetoken]
        var withStored = machine()
        _ = withStored.add(stored, now: t0, random: half, fromStore: true)
        #expect(withStored.credential(key(alice, .skypetoken)) == skypetoken)
        #expect(withStored.accounts[alice]!.credentials[.skypetoken]!.dueAt > t0.addingTimeInterval(40_000))

        // Enrolled now: fetched at once.
        var enrolled = machine()
        _ = enrolled.add(
            seed(alice, tokens: [token(.skype, "skype-1", at: t0)], cookies: cookies), now: t0, random: half)
        #expect(enrolled.accounts[alice]!.credentials[.skypetoken]!.dueAt == t0)
        #expect(enrolled.accounts[alice]!.credentials[.uic]!.dueAt == t0)
    }

    @Test("the UIC's refresh point is taken from its issue time, and never later than registrationTTLRefreshSeconds")
    func uicRefreshPoint() {
        var m = machine()
        _ = m.add(seed(alice, cookies: (Secret("c"), t0.addingTimeInterval(3600))), now: t0, random: half)
        let job = Job(key: key(alice, .uic), realm: "live", step: .userInitialization(cookies: Secret("c")), dueAt: t0)
        let uic = Credential(
            value: Secret("uic"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(1000),
            issuedAt: t0.addingTimeInterval(-1000))
        _ = obtain(&m, job, uic, now: t0)
        // St = t0-1000, Se = t0+1000: 75% of the span is t0+500, earlier than 75% of what is left.
        #expect(m.accounts[alice]!.credentials[.uic]!.dueAt == t0.addingTimeInterval(500))
        var ttl = uic
        ttl.refreshBy = t0.addingTimeInterval(100)
        _ = obtain(&m, job, ttl, now: t0)
        #expect(m.accounts[alice]!.credentials[.uic]!.dueAt == t0.addingTimeInterval(100))
    }

    @Test("the ticket method decides whether an RST ticket is kept, and it needs the stored password")
    func ticketMethod() {
        var m = machine()
        _ = m.add(seed(alice, password: "pw", method: .rst), now: t0, random: half)
        _ = m.add(seed(bob, method: .oauth), now: t0, random: half)
        #expect(m.accounts[alice]!.kinds(scopes: [.skype]).contains(.ticket))
        #expect(!m.accounts[bob]!.kinds(scopes: [.skype]).contains(.ticket))
        #expect(
            m.firstStep(key(alice, .ticket), m.accounts[alice]!, now: t0)
                == .rstTicket(login: alice.rawValue, password: Secret("pw")))
        #expect(m.accounts[bob]!.unavailable(.ticket, scopes: [.skype])?.code == .credentialUnavailable)
    }

    @Test(
        "the cookies' expiry is written only when the server gave one; without it they are served until the grant's expiry, which is not stored"
    )
    func cookieExpiryWrittenOnlyWhenGiven() {
        let now = t0.addingTimeInterval(100)
        for given in [Optional(now.addingTimeInterval(7200)), nil] {
            var m = machine()
            _ = m.add(seed(alice, tokens: [token(.skype, "s", at: t0)], password: "pw"), now: t0, random: half)
            let job = Job(
                key: key(alice, .cookies), realm: "live",
                step: .passwordSignIn(login: alice.rawValue, password: Secret("pw")),
                dueAt: t0)
            let grant = TokenGrant(accessToken: token(.skype, "s2", at: now), refreshToken: Secret("rt2"), userID: nil)
            var effects = m.apply(
                .signedIn(job, SignInGrant(grant: grant, cookies: Secret("c2"), cookiesExpireAt: given)), now: now,
                random: half)
            guard case .persist(_, let write) = effects.first else {
                Issue.record("the sign-in was not written first")
                continue
            }
            #expect(write.cookies == Secret("c2"))
            #expect(write.cookiesExpireAt == given)
            effects += m.apply(.persisted(alice, failure: nil), now: now, random: half)
            #expect(published(effects, key(alice, .cookies))??.expiresAt == given ?? grant.accessToken.expiresAt)
        }
    }

    @Test(
        "a skypetoken the store refused is written with the next grant, but not with new cookies (a new grant family)")
    func unsavedSkypetokenNotWrittenWithNewCookies() {
        let skypetoken = Credential(value: Secret("st"), obtainedAt: t0, expiresAt: t0.addingTimeInterval(86_400))
        func refusedSkypetoken() -> RefreshMachine {
            var m = machine()
            _ = m.add(
                seed(alice, tokens: [token(.skype, "s", at: t0)], password: "pw"), now: t0, random: half)
            let job = Job(
                key: key(alice, .skypetoken), realm: "live", step: .skypetoken(accessToken: Secret("s")), dueAt: t0)
            _ = m.apply(.obtained(job, skypetoken), now: t0, random: half)
            _ = m.apply(.persisted(alice, failure: "disk full"), now: t0, random: half)
            #expect(m.accounts[alice]!.unsaved?.derived[.skypetoken] == skypetoken)
            return m
        }
        let now = t0.addingTimeInterval(100)
        let grant = TokenGrant(accessToken: token(.skype, "s2", at: now), refreshToken: nil, userID: nil)

        // A refresh of the same grant family: the skypetoken goes with it.
        var refreshed = refusedSkypetoken()
        let refresh = Job(
            key: key(alice, .scope(.skype)), realm: "live",
            step: .refreshScope(.skype, refreshToken: Secret("rt-\(alice)")),
            dueAt: t0)
        guard case .persist(_, let withToken) = refreshed.apply(.granted(refresh, grant), now: now, random: half).first
        else {
            Issue.record("the grant was not written first")
            return
        }
        #expect(withToken.derived[.skypetoken] == skypetoken)

        // A sign-in with new cookies: a new family, and the old skypetoken is not written.
        var signedIn = refusedSkypetoken()
        let signIn = Job(
            key: key(alice, .cookies), realm: "live",
            step: .passwordSignIn(login: alice.rawValue, password: Secret("pw")),
            dueAt: t0)
        let result = SignInGrant(grant: grant, cookies: Secret("c2"), cookiesExpireAt: nil)
        guard
            case .persist(_, let withCookies) = signedIn.apply(.signedIn(signIn, result), now: now, random: half).first
        else {
            Issue.record("the sign-in was not written first")
            return
        }
        #expect(withCookies.cookies == Secret("c2"))
        #expect(withCookies.derived[.skypetoken] == nil)
    }

    @Test(
        "a sign-in starts a new grant family: the other tokens and the skypetoken stop being served and are due at once"
    )
    func signInVoidsSiblings() {
        var m = machine(scopes: [.skype, .ssl])
        _ = m.add(
            seed(
                alice, tokens: [token(.skype, "s", at: t0), token(.ssl, "l", at: t0)],
                cookies: (Secret("c"), t0.addingTimeInterval(3600))), now: t0, random: half)
        let job = Job(key: key(alice, .cookies), realm: "live", step: .silentSignIn(cookies: Secret("c")), dueAt: t0)
        let now = t0.addingTimeInterval(100)
        let signIn = SignInGrant(
            grant: TokenGrant(accessToken: token(.skype, "s2", at: now), refreshToken: Secret("rt2"), userID: nil),
            cookies: Secret("c2"), cookiesExpireAt: now.addingTimeInterval(7200))
        var effects = m.apply(.signedIn(job, signIn), now: now, random: half)
        guard case .persist(_, let write) = effects.first else {
            Issue.record("the sign-in was not written first")
            return
        }
        #expect(write.rotatedRefreshToken == Secret("rt2") && write.cookies == Secret("c2"))
        effects += m.apply(.persisted(alice, failure: nil), now: now, random: half)
        #expect(published(effects, key(alice, .scope(.ssl))) == .some(nil))
        #expect(published(effects, key(alice, .skypetoken)) == .some(nil))
        #expect(published(effects, key(alice, .scope(.skype)))??.value == Secret("s2"))
        #expect(published(effects, key(alice, .cookies))??.value == Secret("c2"))
        #expect(m.accounts[alice]!.credentials[.scope(.ssl)]!.dueAt == now)
        // The new family's refresh token is on disk: memory lets it go, and the next refresh
        // reads it from the store.
        #expect(m.accounts[alice]!.refreshToken == nil && m.accounts[alice]!.refreshTokenStored)
        #expect(
            m.firstStep(key(alice, .scope(.ssl)), m.accounts[alice]!, now: now)
                == .refreshScope(.ssl, refreshToken: nil))
    }

    @Test(
        "a refresh token is kept in memory only until the store has it: loaded accounts refresh with the stored one, a rotated one is dropped once written, and kept (and used) while the store refuses it"
    )
    func refreshTokenLivesInTheStore() {
        var m = machine(scopes: [.ssl])
        _ = m.add(seed(alice), now: t0, random: half, fromStore: true)
        #expect(m.accounts[alice]!.refreshToken == nil && m.accounts[alice]!.refreshTokenStored)
        #expect(m.accounts[alice]!.refreshable)
        guard let first = m.due(now: t0, random: half).first else {
            Issue.record("no job for the loaded account")
            return
        }
        #expect(first.step == .refreshScope(.ssl, refreshToken: nil))
        // The executor read "rt-alice" from the store and reports it; the server answers with it
        // again: not a rotation, nothing to write but the access token.
        var sent = first
        sent.step = .refreshScope(.ssl, refreshToken: Secret("rt-\(alice)"))
        var effects = m.apply(
            .granted(
                sent,
                TokenGrant(accessToken: token(.ssl, "a1", at: t0), refreshToken: Secret("rt-\(alice)"), userID: nil)),
            now: t0, random: half)
        guard case .persist(_, let write) = effects.first else {
            Issue.record("the grant was not written first")
            return
        }
        #expect(write.rotatedRefreshToken == nil)
        effects += m.apply(.persisted(alice, failure: nil), now: t0, random: half)
        #expect(m.accounts[alice]!.refreshToken == nil)

        // A rotation the store refuses: kept in memory, and the next refresh sends it.
        let t1 = t0.addingTimeInterval(3000)
        guard let second = m.due(now: t1, random: half).first else {
            Issue.record("no second job")
            return
        }
        sent = second
        sent.step = .refreshScope(.ssl, refreshToken: Secret("rt-\(alice)"))
        effects = m.apply(
            .granted(
                sent, TokenGrant(accessToken: token(.ssl, "a2", at: t1), refreshToken: Secret("rt-new"), userID: nil)),
            now: t1, random: half)
        #expect(
            effects.contains {
                if case .persist(_, let w) = $0 { w.rotatedRefreshToken == Secret("rt-new") } else { false }
            })
        _ = m.apply(.persisted(alice, failure: "disk full"), now: t1, random: half)
        #expect(m.accounts[alice]!.refreshToken == Secret("rt-new"))
        #expect(
            m.firstStep(key(alice, .scope(.ssl)), m.accounts[alice]!, now: t1)
                == .refreshScope(.ssl, refreshToken: Secret("rt-new")))

        // Written at the retry: dropped from memory, read from the store again.
        let t2 = t1.addingTimeInterval(2)
        guard let retry = m.due(now: t2, random: half).first, case .persist = retry.step else {
            Issue.record("the unsaved write was not retried")
            return
        }
        _ = m.apply(.persisted(alice, failure: nil), now: t2, random: half)
        #expect(m.accounts[alice]!.refreshToken == nil && m.accounts[alice]!.refreshTokenStored)
        #expect(
            m.firstStep(key(alice, .scope(.ssl)), m.accounts[alice]!, now: t2) == .refreshScope(.ssl, refreshToken: nil)
        )

        // Enrolled now (not from the store): memory keeps it until a rotation is written.
        _ = m.add(seed(bob), now: t2, random: half)
        #expect(m.accounts[bob]!.refreshToken == Secret("rt-\(bob)"))
    }

    // MARK: - Time

    @Test("a wall-clock jump past expiry: nothing held is served, and every credential is due at the next pass")
    func clockJump() {
        var m = machine(scopes: [.skype, .ssl, .contacts])
        let tokens = [token(.skype, "a", at: t0), token(.ssl, "b", at: t0), token(.contacts, "c", at: t0)]
        _ = m.add(seed(alice, tokens: tokens), now: t0, random: half)
        let later = t0.addingTimeInterval(3 * 3600)
        for scope in [Scope.skype, .ssl, .contacts] {
            #expect(m.wait(for: key(alice, .scope(scope)), minValid: 0, now: later) == nil)
        }
        // One job at a time per account; each is served a new token, and the next comes.
        var now = later
        for _ in 0..<8 {
            for first in m.due(now: now, random: half) {
                var next: Job? = first
                while let job = next {
                    next = nil
                    switch job.step {
                    case .refreshScope(let scope, _):
                        next = runs(grant(&m, job, token(scope, "new-\(scope.alias)", at: now), now: now)).first
                    case .skypetoken:
                        _ = obtain(
                            &m, job,
                            Credential(value: Secret("st"), obtainedAt: now, expiresAt: now.addingTimeInterval(86400)),
                            now: now)
                    default: Issue.record("unexpected step \(job.step)")
                    }
                }
            }
            now = now.addingTimeInterval(0.01)
        }
        for scope in [Scope.skype, .ssl, .contacts] {
            #expect(m.credential(key(alice, .scope(scope)))!.expiresAt > later.addingTimeInterval(3000))
        }
    }

    // MARK: - Storage

    @Test(
        "a refused write keeps the rotated token in memory, serves the new token, and writes it again before the next refresh"
    )
    func storageFailure() {
        var m = machine(scopes: [.ssl])
        _ = m.add(seed(alice), now: t0, random: half)
        guard let job = m.due(now: t0, random: half).first else {
            Issue.record("nothing due")
            return
        }
        let first = m.apply(
            .granted(job, TokenGrant(accessToken: token(.ssl, "a", at: t0), refreshToken: Secret("rt2"), userID: nil)),
            now: t0, random: half)
        // Nothing is served before the store answers.
        #expect(published(first, key(alice, .scope(.ssl))) == nil)
        let effects = m.apply(.persisted(alice, failure: "disk full"), now: t0, random: half)
        #expect(m.storageFailure == "disk full")
        #expect(
            effects.contains {
                if case .log(let e) = $0 { e.metadata["broker.event"] == "storage_degraded" } else { false }
            })
        #expect(published(effects, key(alice, .scope(.ssl)))??.value == Secret("a"))
        #expect(m.accounts[alice]!.unsaved?.rotatedRefreshToken == Secret("rt2"))
        #expect(m.accounts[alice]!.refreshToken == Secret("rt2"))
        // A second later the write is retried, before any refresh of this account.
        let retry = m.due(now: t0.addingTimeInterval(1), random: half)
        guard case .persist(let write)? = retry.first?.step else {
            Issue.record("no write retried: \(retry)")
            return
        }
        #expect(write.rotatedRefreshToken == Secret("rt2"))
        let recovered = m.apply(.persisted(alice, failure: nil), now: t0.addingTimeInterval(1), random: half)
        #expect(m.storageFailure == nil && m.accounts[alice]!.unsaved == nil)
        #expect(
            recovered.contains {
                if case .log(let e) = $0 { e.metadata["broker.event"] == "storage_recovered" } else { false }
            })
    }

    @Test(
        "after a failed attempt, the reads that waited keep the credential urgent for one more try, then backoff rules")
    func urgentAfterFailure() {
        var m = machine(scopes: [.ssl]) { $0.backoffStart = 60 }
        _ = m.add(seed(alice), now: t0, random: half)
        let key = key(alice, .scope(.ssl))
        #expect(m.wait(for: key, minValid: 0, now: t0) == nil)
        let first = m.due(now: t0, random: half)
        _ = m.apply(.failed(first[0], .transient("HTTP 503")), now: t0, random: half)
        // The woken read did not come back: one more urgent try, half a second later...
        let second = m.due(now: t0.addingTimeInterval(0.5), random: half)
        #expect(second.map(\.key) == [key])
        _ = m.apply(.failed(second[0], .transient("HTTP 503")), now: t0.addingTimeInterval(0.5), random: half)
        // ... and then the backoff (about a minute), not a retry every half second.
        #expect(m.due(now: t0.addingTimeInterval(1.5), random: half).isEmpty)
        #expect(m.waiting[key] == nil)
    }

    @Test("an account enrolled again while a refresh of its old grant runs: that refresh's result is dropped")
    func staleGenerationDropped() {
        var m = machine(scopes: [.ssl])
        _ = m.add(seed(alice), now: t0, random: half)
        let old = m.due(now: t0, random: half)[0]
        var again = seed(alice)
        again.refreshToken = Secret("rt-new-family")
        _ = m.add(again, now: t0, random: half)
        let effects = m.apply(
            .granted(
                old,
                TokenGrant(
                    accessToken: token(.ssl, "old-family", at: t0), refreshToken: Secret("rt-old-2"), userID: nil)),
            now: t0, random: half)
        #expect(effects.isEmpty)
        #expect(m.accounts[alice]!.refreshToken == Secret("rt-new-family"))
        #expect(!m.running.contains(alice))
    }

    // MARK: - Concurrency

    @Test("one job per account at a time, several accounts at once, at most maxConcurrentRefreshes in all")
    func singleFlight() {
        var m = machine(scopes: [.skype, .ssl]) { $0.maxConcurrentRefreshes = 3 }
        let names = (1...5).map { AccountName(rawValue: "user\($0)@example.com")! }
        for name in names { _ = m.add(seed(name), now: t0, random: half) }
        let jobs = m.due(now: t0, random: half)
        #expect(jobs.count == 3)
        #expect(Set(jobs.map(\.key.account)).count == 3)
        // Nothing more while three run, however much is due.
        #expect(m.due(now: t0.addingTimeInterval(1), random: half).isEmpty)
        // One finishes: one more job, for an account that is not running.
        _ = m.apply(.failed(jobs[0], .transient("reset")), now: t0, random: half)
        let more = m.due(now: t0.addingTimeInterval(1), random: half)
        #expect(more.count == 1)
        #expect(!jobs.dropFirst().map(\.key.account).contains(more[0].key.account))
    }
}
