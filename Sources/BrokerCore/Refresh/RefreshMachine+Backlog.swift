#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The schedule: which jobs are due. Every account's next time (the earliest of its credentials'
/// refresh points and its unsaved write's next attempt) is an entry in one min-heap by time.
/// Only accounts marked dirty (a job finished, a read waits, an account was added) are looked at
/// again, and only an account whose next time changed gets a new entry: finishing one refresh
/// costs a few heap operations, not a pass over every account, also when hundreds of thousands
/// of credentials are due at once. An entry whose account moved on since is dropped when it
/// comes to the top; a full rebuild happens at start, after a reload changes what is kept, and
/// when such stale entries are over half of the heap.
extension RefreshMachine {
    /// An account's next time. `order` keeps entries due at the same time in the order they
    /// were collected.
    ///
    /// 32 bytes, one per account (not one per credential: an account runs one job at a time, so
    /// its earliest time is all the heap needs). `order` keeps the low 32 bits of the collection
    /// count (after four billion entries it wraps, which at worst swaps two entries due at the
    /// same instant).
    struct Due: Sendable {
        var at: Date
        var account: AccountName
        private var order: UInt32

        init(at: Date, order: UInt64, account: AccountName) {
            self.at = at
            self.order = UInt32(truncatingIfNeeded: order)
            self.account = account
        }

        func precedes(_ other: Due) -> Bool { at < other.at || (at == other.at && order < other.order) }
    }

    /// A binary min-heap of `Due`, earliest (then first collected) on top.
    struct DueHeap: Sendable {
        private(set) var items: [Due] = []

        init() {}

        /// Builds the heap from `items` in linear time, in the array given (and its spare room).
        init(_ items: consuming [Due]) {
            // Moved, not copied: an argument still alive beside it would make the first swap copy
            // the array to an exact fit, and the next push double that.
            self.items = consume items
            var index = self.items.count / 2
            while index > 0 {
                index -= 1
                siftDown(index)
            }
        }

        var count: Int { items.count }
        /// Room for entries without growing the array.
        var capacity: Int { items.capacity }
        var top: Due? { items.first }

        mutating func push(_ item: Due) {
            items.append(item)
            var child = items.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard items[child].precedes(items[parent]) else { break }
                items.swapAt(child, parent)
                child = parent
            }
        }

        @discardableResult
        mutating func pop() -> Due? {
            guard !items.isEmpty else { return nil }
            items.swapAt(0, items.count - 1)
            let item = items.removeLast()
            siftDown(0)
            return item
        }

        private mutating func siftDown(_ start: Int) {
            var parent = start
            while true {
                let left = 2 * parent + 1
                guard left < items.count else { return }
                var first = left
                if left + 1 < items.count, items[left + 1].precedes(items[left]) { first = left + 1 }
                guard items[first].precedes(items[parent]) else { return }
                items.swapAt(first, parent)
                parent = first
            }
        }
    }

    /// The jobs to run now: at most `maxConcurrentRefreshes` running in all, one per account,
    /// the earliest due first, none for an endpoint that rests. Sets `nextWake`.
    package mutating func due(now: Date, random: () -> Double) -> [Job] {
        var wake = now.addingTimeInterval(policy.wakeInterval)
        defer { nextWake = wake }
        guard !stopping else { return [] }
        var jobs: [Job] = []
        var capacity = policy.maxConcurrentRefreshes - running.count
        updateBacklog(now: now)
        // Entries that wait for their endpoint's rest: put back after the loop.
        var resting: [Due] = []
        defer { for item in resting { enqueue(item.account, at: item.at) } }
        while let item = backlog.top {
            if item.at > now {
                wake = min(wake, item.at)
                break
            }
            guard capacity > 0 else { break }
            backlog.pop()
            // Only the account's current entry counts (else a stale one, left behind when its time
            // changed, or by an account since removed): the current one is no longer in the
            // backlog once popped.
            guard accounts[item.account]?.queuedAt == item.at else {
                if staleEntries > 0 { staleEntries -= 1 }
                continue
            }
            accounts[item.account]?.queuedAt = nil
            guard let account = accounts[item.account], account.state == .active else { continue }
            // Its job finishing marks the account dirty, which enqueues its work again.
            if running.contains(item.account) { continue }
            if let unsaved = account.unsaved, account.retrySaveAt <= now {
                jobs.append(
                    Job(
                        key: CredentialKey(account: item.account, kind: unsaved.kind),
                        realm: account.realm, step: .persist(unsaved), dueAt: account.retrySaveAt,
                        generation: account.generation))
                running.insert(item.account)
                capacity -= 1
                continue
            }
            // The credentials due now, earliest first, and the account's next time after them.
            var candidates: [(at: Date, kind: CredentialKind)] = []
            var later: Date? = account.unsaved != nil ? account.retrySaveAt : nil
            if account.refreshable {
                for kind in account.kinds(scopes: scopes) {
                    guard let schedule = account.credentials[kind] else { continue }
                    let at = effectiveDue(item.account, schedule, kind, now: now)
                    if at <= now {
                        candidates.append((at, kind))
                    } else {
                        later = min(later ?? at, at)
                    }
                }
            }
            var started = false
            var rested = false
            for (_, kind) in candidates.enumerated().sorted(by: {
                ($0.element.at, $0.offset) < ($1.element.at, $1.offset)
            })
            .map(\.element) {
                guard let schedule = account.credentials[kind] else { continue }
                let key = CredentialKey(account: item.account, kind: kind)
                let step = firstStep(key, account, now: now)
                // The endpoint this step calls rests after a 429, for every account of the realm.
                if let endpoint = step.endpoint,
                    let rest = rests[RestKey(realm: account.realm, endpoint: endpoint)], rest > now
                {
                    wake = min(wake, rest)
                    rested = true
                    continue
                }
                accounts[item.account]?.credentials[kind]?.lastAttempt = now
                jobs.append(
                    Job(
                        key: key, realm: account.realm, step: step, dueAt: schedule.dueAt,
                        generation: account.generation))
                running.insert(item.account)
                capacity -= 1
                started = true
                break
            }
            if started { continue }
            if rested {
                // Put back once, as it was: taken up again at the next pass, which comes by the
                // time its other work is due.
                resting.append(item)
                if let later { wake = min(wake, later) }
            } else if let later {
                // Its time moved later (a read stopped waiting): it is due then.
                enqueue(item.account, at: later)
            }
        }
        return jobs
    }

    /// The first call towards a fresh credential, following its dependencies: the skypetoken
    /// needs a fresh skype.com token, the UIC needs unexpired cookies, the cookies need valid
    /// cookies (silent sign-in) or the password.
    package func firstStep(_ key: CredentialKey, _ account: AccountSchedule, now: Date) -> Step {
        guard realms.contains(account.realm) else {
            return .impossible(
                .rejected(code: "unknown_realm", description: "realm \(account.realm) is not configured"))
        }
        switch key.kind {
        case .scope(let scope):
            return account.refreshStep(scope)
        case .skypetoken:
            let skype = account.credentials[.scope(.skype)]?.credential
            if let skype, policy.isFresh(skype.accessToken(scope: .skype), now: now, minValid: 0) {
                return .skypetoken(accessToken: skype.value)
            }
            return account.refreshStep(.skype)
        case .cookies:
            return signInStep(account, now: now)
        case .uic:
            if let cookies = account.cookies, cookies.expiresAt > now {
                return .userInitialization(cookies: cookies.value)
            }
            return signInStep(account, now: now)
        case .ticket:
            guard let password = account.password else {
                return .impossible(.rejected(code: "no_password", description: "no stored password"))
            }
            return .rstTicket(login: account.login, password: password)
        case .site:
            // One RST.srf call renews every site: each answer carries its own ticket.
            guard let password = account.password, let sites = account.rstSites else {
                return .impossible(.grantRevoked("no password is stored"))
            }
            return .rstSites(login: account.login, password: password, sites: sites)
        case .skylogin:
            if account.loginKind == .skype {
                guard let hash = account.loginHash else {
                    return .impossible(.grantRevoked("no login hash is stored"))
                }
                return .skylogin(.password(skypeName: account.login, loginHash: hash), clientKey: account.skyloginKey)
            }
            // Each renewal signs in with a login.skype.com token valid at that moment.
            let token = account.credentials[.scope(.loginSkype)]?.credential
            if let token, policy.isFresh(token.accessToken(scope: .loginSkype), now: now, minValid: 0) {
                return .skylogin(.oauth(token: token.value), clientKey: account.skyloginKey)
            }
            return account.refreshStep(.loginSkype)
        }
    }

    /// Silent sign-in while the cookies are valid, else a password sign-in when one is stored.
    func signInStep(_ account: AccountSchedule, now: Date) -> Step {
        if let cookies = account.cookies, cookies.expiresAt > now { return .silentSignIn(cookies: cookies.value) }
        if let password = account.password { return .passwordSignIn(login: account.login, password: password) }
        return .impossible(
            .rejected(code: "cookies_refused", description: "the session cookies expired and no password is stored"))
    }

    /// When the credential should be refreshed: its schedule, or sooner for a read waiting on it.
    func effectiveDue(_ name: AccountName, _ schedule: CredentialSchedule, _ kind: CredentialKind, now: Date) -> Date {
        var due = schedule.dueAt
        if !waiting.isEmpty, waiting[CredentialKey(account: name, kind: kind)] != nil {
            due = min(due, schedule.lastAttempt.map { $0.addingTimeInterval(policy.urgentRetryInterval) } ?? now)
        }
        return due
    }

    /// When an account next has something to do: its unsaved write's next attempt, or its
    /// earliest credential's refresh point (sooner for a read waiting on it). Nil when it has
    /// nothing (not active, or nothing to refresh with and nothing to write).
    func nextTime(_ name: AccountName, _ account: AccountSchedule, now: Date) -> Date? {
        guard account.state == .active else { return nil }
        var next: Date? = account.unsaved != nil ? account.retrySaveAt : nil
        guard account.refreshable else { return next }
        for kind in account.kinds(scopes: scopes) {
            guard let schedule = account.credentials[kind] else { continue }
            let at = effectiveDue(name, schedule, kind, now: now)
            next = min(next ?? at, at)
        }
        return next
    }

    /// Puts an account's entry in the backlog; it becomes the one its `queuedAt` names, and the
    /// one it named before, if any, goes stale.
    private mutating func enqueue(_ name: AccountName, at: Date) {
        if let previous = accounts[name]?.queuedAt, previous != at { staleEntries += 1 }
        accounts[name]?.queuedAt = at
        collected &+= 1
        backlog.push(Due(at: at, order: collected, account: name))
    }

    /// Enqueues an account whose next time is not the one already queued for it.
    private mutating func collect(_ name: AccountName, now: Date) {
        guard let account = accounts[name], let at = nextTime(name, account, now: now), account.queuedAt != at
        else { return }
        enqueue(name, at: at)
    }

    /// Brings the backlog up to date: rebuilt from every account when asked (at start, after a
    /// reload) or when more than half of it is stale (credentials moved earlier leave their later
    /// entries behind), else the dirty accounts' new refresh points added.
    private mutating func updateBacklog(now: Date) {
        if scanNeeded || (staleEntries > 4096 && staleEntries * 2 > backlog.count) {
            scanNeeded = false
            dirty.removeAll(keepingCapacity: true)
            // Room for half as many again: entries are pushed and popped one by one from here on,
            // and an array that grows by doubling from an exact fit would hold twice what it needs.
            let live = max(0, backlog.count - staleEntries)
            // The old heap goes first: both at once would be the peak.
            backlog = DueHeap()
            var due: [Due] = []
            due.reserveCapacity(live + live / 2 + 64)
            staleEntries = 0
            // Index by index, changing each account in place (a held copy, or `indices`, would
            // copy the dictionary being changed).
            var index = accounts.startIndex
            while index != accounts.endIndex {
                defer { index = accounts.index(after: index) }
                let name = accounts.keys[index]
                let at = nextTime(name, accounts.values[index], now: now)
                accounts.values[index].queuedAt = at
                if let at {
                    collected &+= 1
                    due.append(Due(at: at, order: collected, account: name))
                }
            }
            // At start the old heap held nothing to size it by: make the room now if it is short.
            let room = due.count + due.count / 2 + 64
            if due.capacity < room { due.reserveCapacity(room) }
            backlog = DueHeap(consume due)
            return
        }
        guard !dirty.isEmpty else { return }
        let changed = dirty
        dirty.removeAll(keepingCapacity: true)
        for name in changed { collect(name, now: now) }
    }
}
