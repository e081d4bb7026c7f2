#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The schedule: which jobs are due. A full scan of every account finds the work due within
/// `scanHorizon`; between scans only the accounts marked dirty (a job finished, a read waits, an
/// account was added) are looked at again, so finishing one refresh does not mean looking at
/// every account.
extension RefreshMachine {
    /// Something to do for an account at a time: refresh a credential, or (`kind` nil) write a
    /// result the store did not take.
    struct Due: Sendable {
        var at: Date
        var account: AccountName
        var kind: CredentialKind?
    }

    /// How far ahead a full scan looks.
    static let scanHorizon: TimeInterval = 2

    /// The jobs to run now: at most `maxConcurrentRefreshes` running in all, one per account,
    /// the earliest due first, none for an endpoint that rests. Sets `nextWake`.
    package mutating func due(now: Date, random: () -> Double) -> [Job] {
        var wake = now.addingTimeInterval(policy.wakeInterval)
        defer { nextWake = wake }
        guard !stopping else { return [] }
        var jobs: [Job] = []
        var capacity = policy.maxConcurrentRefreshes - running.count
        updateBacklog(now: now)
        wake = min(wake, beyond)
        var index = 0
        while index < backlog.count {
            let item = backlog[index]
            if item.at > now {
                wake = min(wake, item.at)
                break
            }
            guard capacity > 0 else { break }
            // Checked again: the entry may be out of date (a refresh done, an account gone).
            guard let account = accounts[item.account], account.state == .active else {
                backlog.remove(at: index)
                continue
            }
            // Its job finishing marks the account dirty, which brings this entry up to date.
            if running.contains(item.account) {
                index += 1
                continue
            }
            guard let kind = item.kind else {
                guard let unsaved = account.unsaved, account.retrySaveAt <= now else {
                    backlog.remove(at: index)
                    continue
                }
                jobs.append(
                    Job(
                        key: CredentialKey(account: item.account, kind: unsaved.kind),
                        realm: account.realm, step: .persist(unsaved), dueAt: account.retrySaveAt,
                        generation: account.generation))
                running.insert(item.account)
                capacity -= 1
                backlog.remove(at: index)
                continue
            }
            guard account.refreshable, let schedule = account.credentials[kind],
                account.kinds(scopes: scopes).contains(kind),
                effectiveDue(item.account, schedule, kind, now: now) <= now
            else {
                backlog.remove(at: index)
                continue
            }
            let key = CredentialKey(account: item.account, kind: kind)
            let step = firstStep(key, account, now: now)
            // The endpoint this step calls rests after a 429, for every account of the realm.
            if let endpoint = step.endpoint, let rest = rests[RestKey(realm: account.realm, endpoint: endpoint)],
                rest > now
            {
                wake = min(wake, rest)
                index += 1
                continue
            }
            accounts[item.account]?.credentials[kind]?.lastAttempt = now
            jobs.append(
                Job(key: key, realm: account.realm, step: step, dueAt: schedule.dueAt, generation: account.generation))
            running.insert(item.account)
            capacity -= 1
            backlog.remove(at: index)
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
            guard let refreshToken = account.refreshToken else {
                return .impossible(.grantRevoked("no refresh token is stored"))
            }
            return .refreshScope(scope, refreshToken: refreshToken)
        case .skypetoken:
            let skype = account.credentials[.scope(.skype)]?.credential
            if let skype, policy.isFresh(skype.accessToken(scope: .skype), now: now, minValid: 0) {
                return .skypetoken(accessToken: skype.value)
            }
            guard let refreshToken = account.refreshToken else {
                return .impossible(.grantRevoked("no refresh token is stored"))
            }
            return .refreshScope(.skype, refreshToken: refreshToken)
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
            guard let refreshToken = account.refreshToken else {
                return .impossible(.grantRevoked("no refresh token is stored"))
            }
            return .refreshScope(.loginSkype, refreshToken: refreshToken)
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

    /// Appends one account's work (nothing for an account that is not refreshing), to the backlog
    /// when due before `horizon`, else to `beyond`.
    private mutating func collect(
        _ name: AccountName, _ account: AccountSchedule, horizon: Date, now: Date, into due: inout [Due]
    ) {
        guard account.state == .active else { return }
        if account.unsaved != nil {
            if account.retrySaveAt < horizon {
                due.append(Due(at: account.retrySaveAt, account: name, kind: nil))
            } else {
                beyond = min(beyond, account.retrySaveAt)
            }
        }
        guard account.refreshable else { return }
        for kind in account.kinds(scopes: scopes) {
            guard let schedule = account.credentials[kind] else { continue }
            let at = effectiveDue(name, schedule, kind, now: now)
            if at < horizon { due.append(Due(at: at, account: name, kind: kind)) } else { beyond = min(beyond, at) }
        }
    }

    /// Brings the backlog up to date: a full scan when the horizon has passed (or the wall clock
    /// went back), else only the dirty accounts.
    private mutating func updateBacklog(now: Date) {
        if scanNeeded || now >= nextScan || nextScan.timeIntervalSince(now) > Self.scanHorizon {
            scanNeeded = false
            dirty.removeAll(keepingCapacity: true)
            nextScan = now.addingTimeInterval(Self.scanHorizon)
            beyond = .distantFuture
            var due: [Due] = []
            for (name, account) in accounts {
                collect(name, account, horizon: nextScan, now: now, into: &due)
            }
            due.sort { $0.at < $1.at }
            backlog = due
            return
        }
        guard !dirty.isEmpty else { return }
        let changed = dirty
        dirty.removeAll(keepingCapacity: true)
        backlog.removeAll { changed.contains($0.account) }
        var due: [Due] = []
        for name in changed {
            guard let account = accounts[name] else { continue }
            collect(name, account, horizon: nextScan, now: now, into: &due)
        }
        for item in due {
            // Binary search for the place that keeps the backlog sorted.
            var low = 0
            var high = backlog.count
            while low < high {
                let mid = (low + high) / 2
                if backlog[mid].at <= item.at { low = mid + 1 } else { high = mid }
            }
            backlog.insert(item, at: low)
        }
    }
}
