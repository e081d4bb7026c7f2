import BrokerCore
import Foundation
import GRDB

/// Reading accounts and their secrets.
extension CredentialStore {
    /// Every account, by name.
    package func accounts() throws -> [StoredAccount] {
        try read("cannot list accounts") { db in
            try self.fetchAccounts(db, name: nil).map(\.account)
        }
    }

    /// The account named `name`, or nil.
    package func account(named name: AccountName) throws -> StoredAccount? {
        try read("cannot read account \(name)") { db in
            try self.fetchAccounts(db, name: name).first?.account
        }
    }

    /// The name of the account enrolled with `login` (compared case-insensitively) in `realm`.
    package func accountName(login: String, realm: String) throws -> AccountName? {
        let macs = sealer.loginMACs(login: login, realm: realm)
        return try read("cannot look up a login") { db in
            try self.accountName(db, loginMACs: macs)
        }
    }

    /// The secrets of `name`. Throws `.notFound` if there is no such account.
    package func credentials(for name: AccountName) throws -> StoredCredentials {
        try read("cannot read the credentials of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            return try self.fetchCredentials(db, accountID: id, name: name)
        }
    }

    /// Every account with its secrets, by name, read in one transaction (for start-up).
    package func loadAll() throws -> [(StoredAccount, StoredCredentials)] {
        try read("cannot load the accounts") { db in
            try self.fetchAccounts(db, name: nil).map { row in
                (row.account, try self.fetchCredentials(db, accountID: row.id, name: row.account.name))
            }
        }
    }

    /// Up to `limit` accounts with their secrets, those with a row id above `afterID`, in id
    /// order, read in one transaction; and the last id read (nil when there were none). Start-up
    /// reads the store this way, a batch at a time, while reads are already served.
    package func loadBatch(afterID: Int64, limit: Int) throws -> (
        accounts: [(StoredAccount, StoredCredentials)], lastID: Int64?
    ) {
        try read("cannot load the accounts") { db in
            let rows = try self.fetchAccounts(db, afterID: afterID, limit: limit)
            return (
                try rows.map { ($0.account, try self.fetchCredentials(db, accountID: $0.id, name: $0.account.name)) },
                rows.map(\.id).max()
            )
        }
    }

    /// One account with its secrets, or nil.
    package func load(_ name: AccountName) throws -> (StoredAccount, StoredCredentials)? {
        try read("cannot load account \(name)") { db in
            guard let row = try self.fetchAccounts(db, name: name).first else { return nil }
            return (row.account, try self.fetchCredentials(db, accountID: row.id, name: name))
        }
    }

    /// How many accounts there are, and how many of them need a new sign-in: one query, nothing
    /// unsealed.
    package func accountCounts() throws -> (accounts: Int, needsReauth: Int) {
        try read("cannot count the accounts") { db in
            let row = try Row.fetchOne(
                db, sql: "SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE state = 'needs_reauth') AS r FROM accounts")
            return (row?["n"] ?? 0, row?["r"] ?? 0)
        }
    }

    private struct AccountRow {
        var id: Int64
        var account: StoredAccount
    }

    private func fetchAccounts(
        _ db: Database, name: AccountName? = nil, afterID: Int64? = nil, limit: Int? = nil
    ) throws -> [AccountRow] {
        var sql = """
            SELECT a.id, a.name_sealed, a.realm, a.login_sealed, a.state, a.state_reason, a.created_at, a.ticket_method,
                a.login_kind,
                EXISTS (SELECT 1 FROM secrets s WHERE s.account_id = a.id AND s.kind = 'refresh_token') AS has_refresh_token,
                EXISTS (SELECT 1 FROM secrets s WHERE s.account_id = a.id AND s.kind = 'password') AS has_password,
                EXISTS (SELECT 1 FROM secrets s WHERE s.account_id = a.id AND s.kind = 'cookies') AS has_cookies
            FROM accounts a
            """
        var arguments = StatementArguments()
        if let name {
            let macs = sealer.nameMACs(name.rawValue)
            sql += " WHERE a.name IN (\(Array(repeating: "?", count: macs.count).joined(separator: ", ")))"
            arguments = StatementArguments(macs)
        }
        if let afterID, let limit {
            sql += " WHERE a.id > ? ORDER BY a.id LIMIT ?"
            arguments = [afterID, limit]
        }
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            let id: Int64 = row["id"]
            let rawName = try open(
                row["name_sealed"], SealContext(accountID: id, kind: .accountName), account: "row \(id)")
            guard let name = AccountName(rawValue: rawName) else {
                throw BrokerError(.internalError, "account row \(id) has an invalid name")
            }
            let rawState: String = row["state"]
            guard let state = AccountState(rawValue: rawState) else {
                throw BrokerError(.internalError, "account \(name) has an unknown state")
            }
            let login = try open(row["login_sealed"], SealContext(accountID: id, kind: .login), account: rawName)
            var account = StoredAccount(
                name: name, realm: row["realm"], login: login, state: state, stateReason: row["state_reason"],
                createdAt: Date(timeIntervalSince1970: row["created_at"]),
                hasRefreshToken: row["has_refresh_token"], hasPassword: row["has_password"],
                hasCookies: row["has_cookies"],
                ticketMethod: TicketMethod(rawValue: row["ticket_method"]) ?? .oauth)
            account.loginKind = LoginKind(rawValue: row["login_kind"]) ?? .microsoft
            return AccountRow(id: id, account: account)
        }.sorted { $0.account.name < $1.account.name }
    }

    private func fetchCredentials(_ db: Database, accountID id: Int64, name: AccountName) throws
        -> StoredCredentials
    {
        var credentials = StoredCredentials()
        for row in try Row.fetchAll(
            db, sql: "SELECT kind, value, expires_at FROM secrets WHERE account_id = ?", arguments: [id])
        {
            let rawKind: String = row["kind"]
            guard let kind = SecretKind(rawValue: rawKind), Self.accountSecretKinds.contains(kind) else {
                throw BrokerError(.internalError, "account \(name) has a secret of unknown kind")
            }
            let secret = Secret(try open(row["value"], SealContext(accountID: id, kind: kind), account: name.rawValue))
            switch kind {
            case .refreshToken: credentials.refreshToken = secret
            case .password: credentials.password = secret
            case .cookies:
                credentials.cookies = secret
                credentials.cookiesExpireAt = (row["expires_at"] as Double?).map(Date.init(timeIntervalSince1970:))
            case .accessToken, .login, .accountName, .siteTicket, .proofKey, .loginHash, .clientKey,
                .skyloginCredentials, .skypeName, .skypetoken, .uic:
                break
            }
        }
        for row in try Row.fetchAll(
            db, sql: "SELECT scope, value, obtained_at, expires_at FROM access_tokens WHERE account_id = ?",
            arguments: [id])
        {
            let rawScope: String = row["scope"]
            guard let scope = Scope(rawValue: rawScope) else {
                throw BrokerError(.internalError, "account \(name) has an access token for an unknown scope")
            }
            let value = try open(
                row["value"], SealContext(accountID: id, kind: .accessToken, scope: scope), account: name.rawValue)
            credentials.accessTokens[scope] = AccessToken(
                value: Secret(value), scope: scope,
                obtainedAt: Date(timeIntervalSince1970: row["obtained_at"]),
                expiresAt: Date(timeIntervalSince1970: row["expires_at"]))
        }
        for row in try Row.fetchAll(
            db, sql: "SELECT site, value, proof_key, obtained_at, expires_at FROM site_tickets WHERE account_id = ?",
            arguments: [id])
        {
            let site: String = row["site"]
            let value = try open(
                row["value"], SealContext(accountID: id, kind: .siteTicket, site: site), account: name.rawValue)
            let sealedKey: Data? = row["proof_key"]
            let proofKey = try sealedKey.map {
                Secret(try open($0, SealContext(accountID: id, kind: .proofKey, site: site), account: name.rawValue))
            }
            credentials.sites[site] = Credential(
                value: Secret(value), obtainedAt: Date(timeIntervalSince1970: row["obtained_at"]),
                expiresAt: Date(timeIntervalSince1970: row["expires_at"]), proofKey: proofKey)
        }
        for row in try Row.fetchAll(
            db,
            sql: """
                SELECT kind, value, obtained_at, expires_at, refresh_by, issued_at
                FROM derived_credentials WHERE account_id = ?
                """, arguments: [id])
        {
            let rawKind: String = row["kind"]
            let kind: CredentialKind
            switch rawKind {
            case SecretKind.skypetoken.rawValue: kind = .skypetoken
            case SecretKind.uic.rawValue: kind = .uic
            default: throw BrokerError(.internalError, "account \(name) has a stored credential of unknown kind")
            }
            let value = try open(
                row["value"], SealContext(accountID: id, kind: Self.derivedSecretKind(kind)!), account: name.rawValue)
            credentials.derived[kind] = Credential(
                value: Secret(value), obtainedAt: Date(timeIntervalSince1970: row["obtained_at"]),
                expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
                refreshBy: (row["refresh_by"] as Double?).map(Date.init(timeIntervalSince1970:)),
                issuedAt: (row["issued_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
        }
        if let row = try Row.fetchOne(
            db,
            sql: """
                SELECT client_key, login_hash, credentials, skype_name, obtained_at, expires_at
                FROM skylogin WHERE account_id = ?
                """, arguments: [id])
        {
            func open(_ column: String, _ kind: SecretKind) throws -> Secret? {
                guard let sealed = row[column] as Data? else { return nil }
                return Secret(try self.open(sealed, SealContext(accountID: id, kind: kind), account: name.rawValue))
            }
            credentials.skyloginKey = try open("client_key", .clientKey)
            credentials.loginHash = try open("login_hash", .loginHash)
            if let value = try open("credentials", .skyloginCredentials), let obtained = row["obtained_at"] as Double?,
                let expires = row["expires_at"] as Double?
            {
                credentials.skylogin = Credential(
                    value: value, obtainedAt: Date(timeIntervalSince1970: obtained),
                    expiresAt: Date(timeIntervalSince1970: expires), proofKey: credentials.skyloginKey,
                    subject: try open("skype_name", .skypeName)?.exposed)
            }
        }
        return credentials
    }
}
