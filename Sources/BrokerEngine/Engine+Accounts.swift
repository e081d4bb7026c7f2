import BrokerCore
import BrokerStore
import Foundation
import Locks
import Logging

extension BrokerEngine {
    /// Every account's name. Before the start-up load is done, this finishes it first.
    package func accountNames() -> [AccountName] {
        do { try ensureAllLoaded() } catch {
            logger.error("cannot load the accounts", metadata: ["broker.reason": "\(error.message)"])
        }
        return locked.withLock { Array($0.machine.accounts.keys) }.sorted()
    }

    package func status(_ name: AccountName) -> AccountReport? {
        do { try ensureLoaded(name) } catch { return nil }
        return locked.withLock { locked in
            let machine = locked.machine
            guard let account = machine.accounts[name] else { return nil }
            var report = AccountReport(
                name: name, realm: account.realm, login: account.login, state: account.state,
                stateReason: account.stateReason,
                ticketMethod: account.ticketMethod,
                credentials: account.kinds(scopes: machine.scopes).sorted().compactMap { kind in
                    guard let schedule = account.credentials[kind] else { return nil }
                    var backoff = schedule.backoffUntil
                    if let rest = machine.rest(realm: account.realm, kind: kind), rest > (backoff ?? .distantPast) {
                        backoff = rest
                    }
                    return CredentialReport(
                        kind: kind, expiresAt: schedule.credential?.expiresAt, lastRefresh: schedule.lastRefresh,
                        nextRefresh: account.state == .active ? schedule.dueAt : nil, backoffUntil: backoff,
                        failures: schedule.failures, lastError: schedule.lastError)
                })
            report.loginKind = account.loginKind
            return report
        }
    }

    /// Counts a read on the socket: `fresh`, `refreshed`, `denied` or `error`, with its duration.
    package func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64? = nil) {
        metrics.read(outcome, nanoseconds: nanoseconds)
    }

    /// Brings the gauges up to date, just before they are scraped.
    package func updateGauges() {
        let (accounts, needsReauth) = counts()
        metrics.accounts(active: accounts - needsReauth, needsReauth: needsReauth)
    }

    /// Every account, and those that need a new sign-in: from the store until the start-up load
    /// is done (one query), then from the machine.
    package func counts() -> (accounts: Int, needsReauth: Int) {
        if !loadComplete, let counts = try? persistence.accountCounts() { return counts }
        return locked.withLock { locked in
            (locked.machine.accounts.count, locked.machine.accounts.values.filter { $0.state == .needsReauth }.count)
        }
    }

    /// The earliest scheduled refresh, for status lines.
    package func nextRefresh() -> Date? { locked.withLock { $0.machine.nextRefresh() } }

    /// Signs in (or redeems a redirect, or imports a refresh token), stores the grant, and
    /// schedules every credential. Signing in again to an existing account replaces its grant.
    package func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        // Whether the account exists is the machine's to say: every stored account must be in.
        try ensureAllLoaded()
        let configuration = self.configuration
        let realm = try configuration.realm(named: command.realm)
        if case .skypePassword(let password) = command.credential {
            return try await enrollSkype(command, password: password, realm: realm, name: command.name)
        }
        let login = command.login.trimmingCharacters(in: .whitespaces)
        guard !login.isEmpty, login.count <= 320 else { throw BrokerError(.badRequest, "a login is required") }
        guard let name = command.name ?? AccountName(rawValue: login) else {
            throw BrokerError(.badRequest, "the login is not a valid account name; choose one with name")
        }
        let existing = locked.withLock { $0.machine.accounts[name] }.map {
            (login: $0.login, realm: $0.realm, password: $0.password, kind: $0.loginKind)
        }
        if let existing,
            existing.login.lowercased() != login.lowercased() || existing.realm != realm.name
                || existing.kind != .microsoft
        {
            throw BrokerError(.conflict, "account \(name) is already enrolled for another login or realm")
        }
        if realm.signIn == .rst {
            return try await enrollRST(command, realm: realm, name: name, login: login)
        }
        let now = wallClock()
        let grant: TokenGrant
        var cookies = command.cookies.map { (value: $0, expiresAt: Date?.none) }
        var password: Secret?
        switch command.credential {
        case .password(let secret, let storePassword):
            let result = try await identity.signIn(realm: realm, login: login, password: secret, now: now)
            grant = result.grant
            if let value = result.cookies { cookies = (value, result.cookiesExpireAt) }
            if storePassword { password = secret }
        case .redirectURL(let url):
            grant = try identity.redeem(url, now: now)
        case .skypePassword:
            preconditionFailure("enrolled above")
        case .refreshToken(let imported):
            // One refresh proves the token works, and takes the rotated one if the server rotates.
            do {
                var refreshed = try await identity.refresh(
                    realm: realm, refreshToken: imported, scope: configuration.scopes.first ?? .skype, now: now)
                refreshed.refreshToken = refreshed.refreshToken ?? imported
                grant = refreshed
            } catch {
                throw error.brokerError.code == .needsReauth
                    ? BrokerError(.invalidCredentials, "the refresh token was refused: \(error.message)")
                    : error.brokerError
            }
        }
        guard let refreshToken = grant.refreshToken else {
            throw BrokerError(.signInFailed, "sign-in returned no refresh token")
        }
        if command.ticketMethod == .rst && password == nil && existing?.password == nil {
            throw BrokerError(
                .badRequest,
                "the rst ticket method needs the password stored: enroll with a password and store_password")
        }
        var seed = AccountSeed(
            name: name, realm: realm.name, login: login, refreshToken: refreshToken, password: password,
            ticketMethod: command.ticketMethod, accessTokens: [grant.accessToken], cookies: cookies)
        // The new grant reaches the store and the machine together: a job of the old enrollment
        // that reads the stored refresh token meanwhile would spend the new one.
        try grantSwitch.withLock { _ throws(BrokerError) in
            let exists = locked.withLock { $0.machine.accounts[name] != nil }
            do { try persistence.saveEnrollment(seed, exists: exists, now: now) } catch {
                throw Self.brokerError(error)
            }
            seed.password = password ?? locked.withLock { $0.machine.accounts[name]?.password }
            // The SkyLogin key (and the credentials bound to it) outlive a new sign-in: kept for
            // the account's life.
            (seed.skylogin, seed.skyloginKey) = locked.withLock {
                ($0.machine.accounts[name]?.credentials[.skylogin]?.credential, $0.machine.accounts[name]?.skyloginKey)
            }
            install(seed, existed: exists, now: now)
        }
        logger.info(
            "account enrolled",
            metadata: ["broker.account": "\(name)", "broker.realm": "\(realm.name)", "broker.event": "enrolled"])
        return status(name)!
    }

    /// Schedules every credential of an account just enrolled (or signed in again), and tells
    /// the event stream: `enrolled`, or `reauthenticated` for an account that was enrolled before.
    func install(_ seed: AccountSeed, existed: Bool, now: Date) {
        let random = self.random
        let at = wallClock()
        carryOut(
            update { machine in
                var effects = machine.add(seed, now: now, random: random)
                effects.append(
                    .announce(
                        AccountEvent(
                            existed ? .reauthenticated : .enrolled, account: seed.name, at: at,
                            nextRefreshAt: machine.nextRefresh(of: seed.name))))
                return effects
            })
        wakeup.signal()
    }

    /// Re-seals every stored secret under a new key while serving goes on.
    package func rekey(keyBytes: [UInt8]) throws(BrokerError) -> CredentialStore.RekeyResult {
        do {
            let result = try persistence.rekey(to: keyBytes)
            logger.notice(
                "store re-sealed under a new key",
                metadata: ["broker.event": "rekeyed", "broker.key_id": "\(result.keyID)"])
            return result
        } catch {
            throw Self.brokerError(error)
        }
    }

    /// Forgets every secret of the account.
    package func logout(_ name: AccountName) throws(BrokerError) {
        // Under the load's lock, so that a batch read before the delete is not added after it.
        let removed = try loading.withLock { _ throws(BrokerError) -> Bool in
            do { return try persistence.deleteAccount(name) } catch { throw Self.brokerError(error) }
        }
        let at = wallClock()
        var known = false
        carryOut(
            update { machine in
                known = machine.accounts[name] != nil
                var effects = machine.remove(name)
                if removed || known { effects.append(.announce(AccountEvent(.loggedOut, account: name, at: at))) }
                return effects
            })
        guard removed || known else { throw BrokerError(.notFound, "no account named \(name)") }
        logger.info("account removed", metadata: ["broker.account": "\(name)", "broker.event": "logout"])
    }
}
