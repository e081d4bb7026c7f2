import BrokerCore
import Foundation
import GRDB

/// Enrolling, changing and deleting accounts.
extension CredentialStore {
    static let accountSecretKinds: Set<SecretKind> = [.refreshToken, .password, .cookies]

    /// Enrolls an account, with all its secrets, in one transaction. Its state is `active`.
    ///
    /// Throws `.conflict` if `name` exists, or if `login` (case-insensitively) is already
    /// enrolled in `realm` under any name; nothing is written then. A later access token for
    /// the same scope replaces an earlier one.
    package func createAccount(
        name: AccountName, realm: String, login: String, refreshToken: Secret?,
        accessTokens: [AccessToken], password: Secret?, cookies: Secret?, ticketMethod: TicketMethod = .oauth,
        sites: [String: Credential] = [:], loginKind: LoginKind = .microsoft, loginHash: Secret? = nil,
        skylogin: Credential? = nil, cookiesExpireAt: Date? = nil, now: Date = Date()
    ) throws {
        guard !realm.isEmpty else { throw BrokerError(.badRequest, "the realm name is empty") }
        guard !login.isEmpty else { throw BrokerError(.badRequest, "the login is empty") }
        let macs = sealer.loginMACs(login: login, realm: realm)
        try write("cannot create account \(name)") { db in
            if try Self.accountID(db, name, self.sealer) != nil {
                throw BrokerError(.conflict, "an account named \(name) already exists")
            }
            if let other = try self.accountName(db, loginMACs: macs) {
                throw BrokerError(
                    .conflict, "this login is already enrolled in realm \(realm) as account \(other)")
            }
            try db.execute(
                sql: """
                    INSERT INTO accounts (name, realm, login_sealed, login_mac, state, state_reason, created_at, ticket_method)
                    VALUES (?, ?, x'', ?, ?, NULL, ?, ?)
                    """,
                arguments: [
                    self.sealer.nameMACs(name.rawValue)[0], realm, macs[0], AccountState.active.rawValue,
                    now.timeIntervalSince1970, ticketMethod.rawValue,
                ])
            let id = db.lastInsertedRowID
            try db.execute(
                sql: "UPDATE accounts SET login_sealed = ?, name_sealed = ? WHERE id = ?",
                arguments: [
                    try self.sealer.seal(login, SealContext(accountID: id, kind: .login)),
                    try self.sealer.seal(name.rawValue, SealContext(accountID: id, kind: .accountName)), id,
                ])
            try self.putSecret(db, id, .refreshToken, refreshToken, now)
            try self.putSecret(db, id, .password, password, now)
            try self.putSecret(db, id, .cookies, cookies, now, expiresAt: cookiesExpireAt)
            for token in accessTokens {
                try self.putAccessToken(db, id, token)
            }
            for (site, ticket) in sites { try self.putSiteTicket(db, id, site, ticket) }
            if loginKind != .microsoft {
                try db.execute(
                    sql: "UPDATE accounts SET login_kind = ? WHERE id = ?", arguments: [loginKind.rawValue, id])
            }
            if loginHash != nil || skylogin != nil {
                try self.putSkyLogin(db, id, credentials: skylogin, key: skylogin?.proofKey, loginHash: loginHash)
            }
        }
    }

    /// A Skype name enrolled again: its new RSA key, login hash and credentials replace the old,
    /// and the account is active again.
    package func replaceSkyLogin(account name: AccountName, loginHash: Secret, skylogin: Credential) throws {
        try write("cannot store the new sign-in of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            try self.putSkyLogin(db, id, credentials: skylogin, key: skylogin.proofKey, loginHash: loginHash)
            try db.execute(
                sql: "UPDATE accounts SET state = ?, state_reason = NULL WHERE id = ?",
                arguments: [AccountState.active.rawValue, id])
        }
    }

    /// Sets how the account's ssl-compact-ticket is obtained.
    package func setTicketMethod(_ method: TicketMethod, for name: AccountName) throws {
        try write("cannot set the ticket method of \(name)") { db in
            try db.execute(
                sql: "UPDATE accounts SET ticket_method = ? WHERE id = ?",
                arguments: [method.rawValue, try Self.requireAccountID(db, name, self.sealer)])
            guard db.changesCount > 0 else { throw Self.notFound(name) }
        }
    }

    /// Sets the state of an account and why. Throws `.notFound` if there is no such account.
    package func setState(_ state: AccountState, reason: String?, for name: AccountName) throws {
        try write("cannot set the state of \(name)") { db in
            try db.execute(
                sql: "UPDATE accounts SET state = ?, state_reason = ? WHERE id = ?",
                arguments: [state.rawValue, reason, try Self.accountID(db, name, self.sealer)])
            guard db.changesCount > 0 else { throw Self.notFound(name) }
        }
    }

    /// Stores (or with nil, deletes) the password, cookies or refresh token of an account.
    /// Throws `.badRequest` for other kinds and `.notFound` if there is no such account.
    package func setSecret(_ secret: Secret?, kind: SecretKind, account name: AccountName, now: Date = Date()) throws {
        guard Self.accountSecretKinds.contains(kind) else {
            throw BrokerError(.badRequest, "\(kind.rawValue) is not stored with setSecret")
        }
        try write("cannot store the \(kind.rawValue) of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            try self.putSecret(db, id, kind, secret, now)
        }
    }

    /// Deletes an account and every secret of it. Deleted values are overwritten in the
    /// database file (`secure_delete`), and the write-ahead log is then checkpointed and
    /// truncated so it keeps no copy either. Returns false if there was no such account.
    ///
    /// If the log cannot be truncated (another process holds a read on it), the account is
    /// deleted all the same and this throws `.temporarilyUnavailable`.
    package func deleteAccount(_ name: AccountName) throws -> Bool {
        let deleted = try write("cannot delete account \(name)") { db in
            try db.execute(
                sql: "DELETE FROM accounts WHERE id = ?", arguments: [try Self.accountID(db, name, self.sealer)])
            return db.changesCount > 0
        }
        guard deleted else { return false }
        try checkpointTruncate("account \(name) was deleted, but the write-ahead log was not truncated")
        return true
    }

    /// Copies the write-ahead log into the database file and truncates it to zero bytes.
    func checkpointTruncate(_ action: String) throws {
        try checkOpen()
        do {
            try pool.barrierWriteWithoutTransaction { db in
                _ = try db.checkpoint(.truncate)
            }
        } catch {
            let mapped = storeError(error, action)
            throw BrokerError(.temporarilyUnavailable, mapped.message, cause: mapped.cause)
        }
    }
}
