#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// What each outcome changes. A result is written to the store before it is served: a grant
/// becomes a `persist` effect, and only `Outcome.persisted` installs it, publishes it to reads,
/// hands it to waiting reads, and continues the job. A write the store refuses is kept in
/// memory, served, and written again before the account refreshes again.
extension RefreshMachine {
    package mutating func apply(_ outcome: Outcome, now: Date, random: () -> Double) -> [Effect] {
        switch outcome {
        case .granted(let job, _), .signedIn(let job, _), .obtained(let job, _), .obtainedSites(let job, _),
            .failed(let job, _):
            // A job of an account enrolled again since it started: its result belongs to the old
            // grant family and is dropped.
            if let account = accounts[job.key.account], account.generation != job.generation {
                return finish(job.key.account)
            }
        case .persisted:
            break
        }
        switch outcome {
        case .granted(let job, let grant):
            return granted(job, grant, now: now)
        case .signedIn(let job, let result):
            guard let cookies = result.cookies else {
                return failed(job, .transient("the sign-in set no session cookies"), now: now, random: random)
            }
            let expires = result.cookiesExpireAt ?? result.grant.accessToken.expiresAt
            return granted(
                job, result.grant, cookies: Credential(value: cookies, obtainedAt: now, expiresAt: expires),
                cookiesExpireAt: result.cookiesExpireAt, now: now)
        case .obtained(let job, let credential) where job.key.kind == .skylogin:
            return obtainedSkyLogin(job, credential)
        case .obtained(let job, let credential) where job.key.kind == .skypetoken || job.key.kind == .uic:
            return obtainedDerived(job, credential)
        case .obtained(let job, let credential):
            return obtained(job, credential, now: now, random: random)
        case .obtainedSites(let job, let sites):
            return obtainedSites(job, sites, now: now, random: random)
        case .failed(let job, let failure):
            return failed(job, failure, now: now, random: random)
        case .persisted(let name, let failure):
            return persisted(name, failure: failure, now: now, random: random)
        }
    }

    // MARK: - Results

    /// A new grant (from the token endpoint, or a sign-in with its cookies): write it first.
    /// `cookiesExpireAt` is the expiry the server gave the cookies, if it gave one: only that is
    /// stored (a guess would make a restart after it skip the silent sign-in).
    private mutating func granted(
        _ job: Job, _ grant: TokenGrant, cookies: Credential? = nil, cookiesExpireAt: Date? = nil, now: Date
    ) -> [Effect] {
        let name = job.key.account
        guard var account = accounts[name] else { return finish(job.key.account) }
        // Rotation is judged against the refresh token the call sent (the executor puts the one it
        // read from the store in the job it reports).
        var previous = account.refreshToken
        if case .refreshScope(_, let sent?) = job.step { previous = sent }
        let rotated = grant.refreshToken.flatMap { $0 == previous ? nil : $0 }
        // The rotated refresh token replaces the old one now: the next refresh uses it, and it
        // reaches the store in the write below, together with anything still unsaved.
        if let rotated { account.refreshToken = rotated }
        let write = PendingWrite(
            accessToken: grant.accessToken, rotatedRefreshToken: rotated ?? account.unsaved?.rotatedRefreshToken,
            cookies: cookies?.value ?? account.unsaved?.cookies, sites: account.unsaved?.sites ?? [:],
            skylogin: account.unsaved?.skylogin,
            cookiesExpireAt: cookies == nil ? account.unsaved?.cookiesExpireAt : cookiesExpireAt,
            // New cookies start a new grant family: an unsaved skypetoken of the old one is not
            // written with them.
            derived: (account.unsaved?.derived ?? [:]).filter { cookies == nil || $0.key != .skypetoken })
        account.committing = Commit(
            job: job, kind: .scope(grant.accessToken.scope), credential: Credential(grant.accessToken),
            cookies: cookies,
            rotated: rotated != nil, write: write)
        accounts[name] = account
        return [.persist(name, write)]
    }

    /// RST.srf answered an `rst` account's sites: every ticket (with its BinarySecret) is
    /// written first, then all are installed together. A ticket and its BinarySecret always come
    /// from the same answer. A site the answer lacks is marked missing (unavailable, and not asked
    /// for again) rather than retried forever; the others are installed all the same.
    private mutating func obtainedSites(
        _ job: Job, _ sites: [String: Credential], now: Date, random: () -> Double
    ) -> [Effect] {
        let name = job.key.account
        guard var account = accounts[name] else { return finish(name) }
        let kept = sites.filter { account.credentials[.site($0.key)] != nil && !account.missingSites.contains($0.key) }
        guard case .site(let wanted) = job.key.kind, let primary = kept[wanted] != nil ? wanted : kept.keys.min()
        else {
            return failed(job, .transient("RST.srf sent no ticket for any site"), now: now, random: random)
        }
        var effects: [Effect] = []
        let missing = account.siteKinds.compactMap { kind -> String? in
            guard case .site(let key) = kind, kept[key] == nil else { return nil }
            return key
        }
        if !missing.isEmpty {
            account.missingSites.formUnion(missing)
            for key in missing {
                account.credentials[.site(key)] = nil
                let siteKey = CredentialKey(account: name, kind: .site(key))
                waiting[siteKey] = nil
                effects += [
                    .publish(siteKey, nil),
                    .deliver(
                        siteKey, .failed(account.unavailable(.site(key), scopes: scopes)!, current: nil, final: true)),
                ]
            }
            effects += [
                .publishAccount(name, account.view(scopes: scopes)),
                .log(
                    LogEvent(
                        .warning, "the server issues no ticket for some sites",
                        [
                            "broker.account": "\(name)", "broker.event": "sites_missing",
                            "broker.sites": missing.sorted().joined(separator: ","),
                        ])),
            ]
        }
        let write = PendingWrite(
            accessToken: account.unsaved?.accessToken, rotatedRefreshToken: account.unsaved?.rotatedRefreshToken,
            cookies: account.unsaved?.cookies, sites: (account.unsaved?.sites ?? [:]).merging(kept) { $1 },
            skylogin: account.unsaved?.skylogin, cookiesExpireAt: account.unsaved?.cookiesExpireAt,
            derived: account.unsaved?.derived ?? [:])
        var siblings: [CredentialKind: Credential] = [:]
        for (key, ticket) in kept where key != primary { siblings[.site(key)] = ticket }
        account.committing = Commit(
            job: job, kind: .site(primary), credential: kept[primary]!, cookies: nil, rotated: false, write: write,
            siblings: siblings)
        accounts[name] = account
        return effects + [.persist(name, write)]
    }

    /// SkyLogin credentials: written first, with the RSA key they are bound to (made at first use
    /// by the executor, so it reaches the store with them), then installed.
    private mutating func obtainedSkyLogin(_ job: Job, _ credential: Credential) -> [Effect] {
        let name = job.key.account
        guard var account = accounts[name] else { return finish(name) }
        let write = PendingWrite(
            accessToken: account.unsaved?.accessToken, rotatedRefreshToken: account.unsaved?.rotatedRefreshToken,
            cookies: account.unsaved?.cookies, sites: account.unsaved?.sites ?? [:], skylogin: credential,
            cookiesExpireAt: account.unsaved?.cookiesExpireAt, derived: account.unsaved?.derived ?? [:])
        if let key = credential.proofKey { account.skyloginKey = key }
        account.committing = Commit(
            job: job, kind: .skylogin, credential: credential, cookies: nil, rotated: false, write: write)
        accounts[name] = account
        return [.persist(name, write)]
    }

    /// A skypetoken or a UIC: written first (sealed), so that a restart serves it until its own
    /// refresh point instead of fetching it again, then installed.
    private mutating func obtainedDerived(_ job: Job, _ credential: Credential) -> [Effect] {
        let name = job.key.account
        guard var account = accounts[name] else { return finish(name) }
        var derived = account.unsaved?.derived ?? [:]
        derived[job.key.kind] = credential
        let write = PendingWrite(
            accessToken: account.unsaved?.accessToken, rotatedRefreshToken: account.unsaved?.rotatedRefreshToken,
            cookies: account.unsaved?.cookies, sites: account.unsaved?.sites ?? [:],
            skylogin: account.unsaved?.skylogin, cookiesExpireAt: account.unsaved?.cookiesExpireAt, derived: derived)
        account.committing = Commit(
            job: job, kind: job.key.kind, credential: credential, cookies: nil, rotated: false, write: write)
        accounts[name] = account
        return [.persist(name, write)]
    }

    /// The store answered. After a commit, the result is installed, served and handed on.
    private mutating func persisted(_ name: AccountName, failure: String?, now: Date, random: () -> Double) -> [Effect]
    {
        guard var account = accounts[name] else { return finish(name) }
        var effects = storage(failure, account: name)
        if failure != nil {
            // Keep it in memory, keep serving, and try again in a second.
            account.unsaved = account.committing?.write ?? account.unsaved
            account.retrySaveAt = now.addingTimeInterval(1)
        } else {
            // A rotated refresh token is on disk now: the next refresh reads it from the store.
            let written = account.committing?.write.rotatedRefreshToken ?? account.unsaved?.rotatedRefreshToken
            if let written, account.refreshToken == written {
                account.refreshToken = nil
                account.refreshTokenStored = true
            }
            if account.committing == nil, account.unsaved != nil {
                effects.append(
                    .log(
                        LogEvent(
                            .notice, "saved a refreshed token that had waited in memory", ["broker.account": "\(name)"])
                    ))
            }
            account.unsaved = nil
        }
        guard let commit = account.committing else {
            accounts[name] = account
            return effects + finish(name)
        }
        account.committing = nil
        accounts[name] = account
        return effects + install(commit, now: now, random: random)
    }

    /// Installs a written grant: the token is served, the cookies of a sign-in replace the old
    /// ones and void the old family's tokens, the skypetoken follows the skype.com token, and a
    /// job that needed this token continues.
    private mutating func install(_ commit: Commit, now: Date, random: () -> Double) -> [Effect] {
        let name = commit.job.key.account
        // Taken out of the dictionary while it changes, so that its credentials are changed in
        // place rather than copied (a copy per refresh is memory churn that fragments the heap).
        guard var account = accounts.removeValue(forKey: name) else { return finish(name) }
        let key = CredentialKey(account: name, kind: commit.kind)
        account.credentials[commit.kind] = fresh(commit.credential, random: random)
        var effects: [Effect] = [.publish(key, commit.credential), .deliver(key, .refreshed(commit.credential))]
        waiting[key] = nil
        for (kind, credential) in commit.siblings.sorted(by: { $0.key < $1.key }) {
            let sibling = CredentialKey(account: name, kind: kind)
            account.credentials[kind] = fresh(credential, random: random)
            effects += [.publish(sibling, credential), .deliver(sibling, .refreshed(credential))]
            waiting[sibling] = nil
        }
        if let cookies = commit.cookies {
            // A sign-in starts a new grant family and the provider revokes the old one: the
            // other tokens (and the skypetoken made from one) must not be served any more.
            for kind in Array(account.credentials.keys)
            where kind != commit.kind && (kind == .skypetoken || kind.isScope) {
                account.credentials[kind]?.credential = nil
                account.credentials[kind]?.dueAt = now
                effects.append(.publish(CredentialKey(account: name, kind: kind), nil))
            }
            account.credentials[.cookies] = fresh(cookies, random: random)
            let cookiesKey = CredentialKey(account: name, kind: .cookies)
            effects += [.publish(cookiesKey, cookies), .deliver(cookiesKey, .refreshed(cookies))]
            waiting[cookiesKey] = nil
            if account.cookiesLost != nil {
                account.cookiesLost = nil
                effects.append(.publishAccount(name, account.view(scopes: scopes)))
            }
        }
        // The skypetoken follows the token it is made from, due when that token was: behind a
        // backlog of late refreshes it comes up next, among the refreshes due when it was, rather
        // than after every refresh due until now (which would bunch the skypetokens up for when
        // the backlog drains).
        if commit.kind == .scope(.skype), account.credentials[.skypetoken] != nil {
            account.credentials[.skypetoken]?.dueAt = min(now, commit.job.dueAt)
        }
        accounts[name] = account
        effects.append(.count(.ok))
        effects += refreshed(
            name, [commit.kind] + commit.siblings.keys.sorted() + (commit.cookies == nil ? [] : [.cookies]), now: now)
        effects.append(
            .log(
                LogEvent(
                    .info, "token refreshed",
                    [
                        "broker.account": "\(name)", "broker.credential": "\(commit.kind.name)",
                        "broker.scope": "\(commit.kind.name)",
                        "broker.event": "refreshed", "broker.rotated": "\(commit.rotated)",
                        "broker.expires_in": "\(Int(commit.credential.expiresAt.timeIntervalSince(now)))",
                        "broker.next_refresh_usec": nextRefreshMicroseconds(key),
                    ])))
        // A job that needed this token (or these cookies) goes on with what it just got.
        let job = commit.job
        switch (job.key.kind, commit.cookies) {
        case (.skypetoken, _) where commit.kind == .scope(.skype):
            return effects + [
                .run(
                    Job(
                        key: job.key, realm: job.realm, step: .skypetoken(accessToken: commit.credential.value),
                        dueAt: job.dueAt, retried: job.retried, generation: job.generation))
            ]
        case (.skylogin, _) where commit.kind == .scope(.loginSkype):
            return effects + [
                .run(
                    Job(
                        key: job.key, realm: job.realm,
                        step: .skylogin(.oauth(token: commit.credential.value), clientKey: account.skyloginKey),
                        dueAt: job.dueAt, retried: job.retried, generation: job.generation))
            ]
        case (.uic, let cookies?):
            return effects + [
                .run(
                    Job(
                        key: job.key, realm: job.realm, step: .userInitialization(cookies: cookies.value),
                        dueAt: job.dueAt, retried: job.retried, generation: job.generation))
            ]
        default:
            return effects + finish(name)
        }
    }

    /// A credential that lives in memory only (an OAuth realm's RST ticket).
    private mutating func obtained(_ job: Job, _ credential: Credential, now: Date, random: () -> Double) -> [Effect] {
        let key = job.key
        guard accounts[key.account] != nil else { return finish(key.account) }
        let schedule = fresh(credential, random: random)
        accounts[key.account]?.credentials[key.kind] = schedule
        waiting[key] = nil
        return [
            .publish(key, credential), .deliver(key, .refreshed(credential)), .count(.ok),
            refreshed(key.account, [key.kind], now: now)[0],
            .log(
                LogEvent(
                    .info, "credential refreshed",
                    [
                        "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)",
                        "broker.event": "refreshed",
                        "broker.expires_in": "\(Int(credential.expiresAt.timeIntervalSince(now)))",
                        "broker.next_refresh_usec": nextRefreshMicroseconds(key),
                    ])),
        ] + finish(key.account)
    }

    // MARK: - Failures

    private mutating func failed(_ job: Job, _ failure: RefreshFailure, now: Date, random: () -> Double) -> [Effect] {
        if let next = retry(job, after: failure, now: now) { return [.run(next)] }
        let key = job.key
        guard var account = accounts[key.account], var schedule = account.credentials[key.kind] else {
            waiting[key] = nil
            return [.deliver(key, .failed(failure.brokerError, current: nil, final: true))] + finish(key.account)
        }
        let error = failure.brokerError
        schedule.failures += 1
        schedule.lastError = error
        var effects: [Effect] = []
        var final = false
        switch failure {
        case .grantRevoked, .passwordRefused:
            account.state = .needsReauth
            account.stateReason = failure.message
            final = true
        case .rateLimited(let retryAfter):
            let rest = policy.rateLimitRest(retryAfter: retryAfter, now: now)
            let restKey = RestKey(realm: account.realm, endpoint: job.step.endpoint ?? Self.endpoint(of: key.kind))
            rests[restKey] = max(rests[restKey] ?? rest, rest)
            schedule.backoffUntil = rest
            schedule.dueAt = max(schedule.dueAt, rest)
        case .rejected(let code, let description)
        where code == "cookies_refused" && (key.kind == .cookies || key.kind == .uic):
            account.cookiesLost = description
            schedule.dueAt = now.addingTimeInterval(policy.backoffCap)
            final = true
        case .transient, .rejected:
            let retry = policy.retryAfterFailure(
                failures: schedule.failures, now: now, expiresAt: schedule.credential?.expiresAt, random: random())
            schedule.backoffUntil = retry
            schedule.dueAt = retry
        }
        account.credentials[key.kind] = schedule
        accounts[key.account] = account
        let hadWaiters = (waiting[key] ?? 0) > 0
        // Reads still waiting try again soon while the credential stays urgent.
        if final || !hadWaiters { waiting[key] = nil } else { waiting[key] = 0 }
        let answer =
            account.state == .needsReauth
            ? Self.needsReauth(key.account, account.stateReason)
            : final ? account.unavailable(key.kind, scopes: scopes) ?? error : error
        effects += [
            .deliver(key, .failed(answer, current: schedule.credential, final: final)),
            self.failure(key, failure, error: error, now: now),
        ]
        switch failure {
        case .grantRevoked, .passwordRefused:
            effects += [
                .count(.needsReauth), .saveState(key.account, .needsReauth, reason: failure.message),
                .publishAccount(key.account, account.view(scopes: scopes)),
                .log(
                    LogEvent(
                        .warning, "account needs a new sign-in",
                        [
                            "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)",
                            "broker.event": "needs_reauth",
                            "broker.reason": failure.message,
                        ])),
            ]
        case .rateLimited:
            effects.append(.count(.rateLimited))
        default:
            effects.append(.count(.failed))
        }
        if case .rejected(let code, _) = failure, final, code == "cookies_refused" {
            for kind in [CredentialKind.cookies, .uic] where kind != key.kind {
                let other = CredentialKey(account: key.account, kind: kind)
                waiting[other] = nil
                effects.append(
                    .deliver(
                        other, .failed(account.unavailable(kind, scopes: scopes) ?? error, current: nil, final: true)))
            }
            effects.append(.publishAccount(key.account, account.view(scopes: scopes)))
        }
        switch failure {
        case .grantRevoked, .passwordRefused: break
        default:
            effects.append(
                .log(
                    LogEvent(
                        .notice, final ? "session cookies lost" : "refresh failed",
                        [
                            "broker.account": "\(key.account)", "broker.credential": "\(key.kind.name)",
                            "broker.event": "refresh_failed",
                            "broker.error": error.code.rawValue, "broker.reason": failure.message,
                        ])))
        }
        return effects + finish(key.account)
    }

    /// A refusal that one more step can mend, once per job: a skypetoken refused for its
    /// access token (this is where a revoked grant shows) gets a new skype.com token; cookies
    /// refused by silent sign-in fall back to the stored password; cookies refused by
    /// User/Initialization are renewed.
    private func retry(_ job: Job, after failure: RefreshFailure, now: Date) -> Job? {
        guard let account = accounts[job.key.account] else { return nil }
        var next = job
        // SkyLogin refused a login.skype.com token the account held: once more with a new one,
        // before the refusal counts (it may have been revoked on the server's side).
        if case .passwordRefused = failure, case .skylogin(.oauth, _) = job.step, !job.retried {
            guard account.hasRefreshToken else { return nil }
            next.step = account.refreshStep(.loginSkype)
            next.retried = true
            return next
        }
        guard case .rejected(let code, _) = failure else { return nil }
        switch job.step {
        case .skypetoken where code.hasPrefix("skypetoken_") && !job.retried:
            guard account.hasRefreshToken else { return nil }
            next.step = account.refreshStep(.skype)
        case .silentSignIn where code == "cookies_refused":
            guard let password = account.password else { return nil }
            next.step = .passwordSignIn(login: account.login, password: password)
        case .userInitialization where code == "cookies_refused" && !job.retried:
            next.step = signInStep(account, now: now)
        default:
            return nil
        }
        next.retried = true
        return next
    }

    // MARK: - Refusals outside a job

    /// The server refused the stored password on an on-demand call (a Passport 1.4 login): the
    /// account needs a new sign-in, like a refresh refused with `invalid_grant`, and nothing is
    /// retried until it has one.
    package mutating func passwordRefused(_ name: AccountName, reason: String, now: Date, generation: UInt64? = nil)
        -> [Effect]
    {
        guard var account = accounts[name], account.state == .active,
            generation == nil || generation == account.generation
        else { return [] }
        account.state = .needsReauth
        account.stateReason = reason
        accounts[name] = account
        dirty.insert(name)
        var effects: [Effect] = []
        for key in waiting.keys where key.account == name {
            waiting[key] = nil
            effects.append(
                .deliver(
                    key,
                    .failed(
                        Self.needsReauth(name, reason), current: account.credentials[key.kind]?.credential,
                        final: true)))
        }
        return effects + [
            .count(.needsReauth), .saveState(name, .needsReauth, reason: reason),
            .publishAccount(name, account.view(scopes: scopes)),
            .announce(AccountEvent(.needsReauth, account: name, at: now, errorCode: .needsReauth, message: reason)),
            .log(
                LogEvent(
                    .warning, "account needs a new sign-in",
                    ["broker.account": "\(name)", "broker.event": "needs_reauth", "broker.reason": reason])),
        ]
    }

    // MARK: - Bookkeeping

    /// The account's job is over: its slot is free and its schedule is looked at again.
    private mutating func finish(_ name: AccountName) -> [Effect] {
        running.remove(name)
        dirty.insert(name)
        return []
    }

    /// Storage failing or recovering, as the store's answers show it.
    private mutating func storage(_ failure: String?, account: AccountName) -> [Effect] {
        defer { storageFailure = failure }
        if let failure, storageFailure == nil {
            return [
                .log(
                    LogEvent(
                        .error, "storage failing: keeping refreshed tokens in memory, serving, and retrying the writes",
                        [
                            "broker.account": "\(account)", "broker.event": "storage_degraded",
                            "broker.reason": failure,
                        ]))
            ]
        }
        if failure == nil, storageFailure != nil {
            return [
                .log(
                    LogEvent(
                        .notice, "storage recovered: every refreshed token is on disk again",
                        ["broker.event": "storage_recovered"]))
            ]
        }
        return []
    }

    /// When the credential is next due, in microseconds since the epoch (the journal's NEXT_REFRESH_USEC).
    private func nextRefreshMicroseconds(_ key: CredentialKey) -> String {
        guard let due = accounts[key.account]?.credentials[key.kind]?.dueAt else { return "" }
        return String(Int64(due.timeIntervalSince1970 * 1_000_000))
    }
}

extension CredentialKind {
    var isScope: Bool {
        if case .scope = self { return true }
        return false
    }
}
