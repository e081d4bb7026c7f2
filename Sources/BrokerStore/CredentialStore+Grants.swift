import BrokerCore
import Foundation
import GRDB

/// Storing what a refresh or a new sign-in brought.
extension CredentialStore {
    /// Commits the result of a refresh: the access token for its scope and, when the server
    /// rotated it, the new refresh token, in one durable transaction. Call it before serving
    /// the token or forgetting the old refresh token. With `rotatedRefreshToken` nil the stored
    /// refresh token is kept. Throws `.notFound` if there is no such account.
    /// `now` is when the secrets were obtained, from the caller's clock.
    package func commitRefresh(
        account name: AccountName, accessToken: AccessToken?, rotatedRefreshToken: Secret?, cookies: Secret? = nil,
        cookiesExpireAt: Date? = nil, sites: [String: Credential] = [:], skylogin: Credential? = nil,
        derived: [CredentialKind: Credential] = [:], now: Date = Date()
    ) throws {
        try write("cannot store the refreshed token of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            if let accessToken { try self.putAccessToken(db, id, accessToken) }
            for (site, ticket) in sites { try self.putSiteTicket(db, id, site, ticket) }
            if let skylogin { try self.putSkyLogin(db, id, credentials: skylogin, key: skylogin.proofKey) }
            if let rotatedRefreshToken {
                try self.putSecret(db, id, .refreshToken, rotatedRefreshToken, now)
            }
            if let cookies {
                try self.putSecret(db, id, .cookies, cookies, now, expiresAt: cookiesExpireAt)
                // New cookies come from a sign-in, which starts a new grant family: the skypetoken
                // made from the old family's token is not loaded again.
                if derived[.skypetoken] == nil {
                    try db.execute(
                        sql: "DELETE FROM derived_credentials WHERE account_id = ? AND kind = 'skypetoken'",
                        arguments: [id])
                }
            }
            for (kind, credential) in derived { try self.putDerived(db, id, kind, credential) }
        }
    }

    /// Replaces the grant of an existing account after a new sign-in: the refresh token, every
    /// access token (those not in `accessTokens` are deleted) and the cookies (nil deletes
    /// them), and sets the state to `active` with no reason, in one transaction. The password
    /// is kept. Throws `.notFound` if there is no such account.
    package func replaceGrant(
        account name: AccountName, refreshToken: Secret?, accessTokens: [AccessToken], cookies: Secret?,
        cookiesExpireAt: Date? = nil, sites: [String: Credential] = [:], now: Date = Date()
    ) throws {
        try write("cannot store the new sign-in of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            try self.putSecret(db, id, .refreshToken, refreshToken, now)
            try db.execute(sql: "DELETE FROM access_tokens WHERE account_id = ?", arguments: [id])
            for token in accessTokens {
                try self.putAccessToken(db, id, token)
            }
            try self.putSecret(db, id, .cookies, cookies, now, expiresAt: cookiesExpireAt)
            try db.execute(sql: "DELETE FROM derived_credentials WHERE account_id = ?", arguments: [id])
            try db.execute(sql: "DELETE FROM site_tickets WHERE account_id = ?", arguments: [id])
            for (site, ticket) in sites { try self.putSiteTicket(db, id, site, ticket) }
            try db.execute(
                sql: "UPDATE accounts SET state = ?, state_reason = NULL WHERE id = ?",
                arguments: [AccountState.active.rawValue, id])
        }
    }

    func putSecret(
        _ db: Database, _ id: Int64, _ kind: SecretKind, _ secret: Secret?, _ now: Date, expiresAt: Date? = nil
    ) throws {
        guard let secret else {
            try db.execute(
                sql: "DELETE FROM secrets WHERE account_id = ? AND kind = ?", arguments: [id, kind.rawValue])
            return
        }
        let sealed = try sealer.seal(secret.exposed, SealContext(accountID: id, kind: kind))
        try db.execute(
            sql: """
                INSERT INTO secrets (account_id, kind, value, updated_at, expires_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (account_id, kind) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at,
                    expires_at = excluded.expires_at
                """,
            arguments: [id, kind.rawValue, sealed, now.timeIntervalSince1970, expiresAt?.timeIntervalSince1970])
    }

    /// One RST site's ticket, and the BinarySecret that came with it (or none), replacing both.
    func putSiteTicket(_ db: Database, _ id: Int64, _ site: String, _ ticket: Credential) throws {
        let value = try sealer.seal(ticket.value.exposed, SealContext(accountID: id, kind: .siteTicket, site: site))
        let proofKey = try ticket.proofKey.map {
            try sealer.seal($0.exposed, SealContext(accountID: id, kind: .proofKey, site: site))
        }
        try db.execute(
            sql: """
                INSERT INTO site_tickets (account_id, site, value, proof_key, obtained_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (account_id, site) DO UPDATE SET value = excluded.value, proof_key = excluded.proof_key,
                    obtained_at = excluded.obtained_at, expires_at = excluded.expires_at
                """,
            arguments: [
                id, site, value, proofKey, ticket.obtainedAt.timeIntervalSince1970,
                ticket.expiresAt.timeIntervalSince1970,
            ])
    }

    /// The SkyLogin row: the RSA key and the credentials (with their times), and a Skype name's
    /// login hash; a nil argument keeps what is stored.
    func putSkyLogin(_ db: Database, _ id: Int64, credentials: Credential?, key: Secret?, loginHash: Secret? = nil)
        throws
    {
        try db.execute(sql: "INSERT OR IGNORE INTO skylogin (account_id) VALUES (?)", arguments: [id])
        if let key {
            try db.execute(
                sql: "UPDATE skylogin SET client_key = ? WHERE account_id = ?",
                arguments: [try sealer.seal(key.exposed, SealContext(accountID: id, kind: .clientKey)), id])
        }
        if let loginHash {
            try db.execute(
                sql: "UPDATE skylogin SET login_hash = ? WHERE account_id = ?",
                arguments: [try sealer.seal(loginHash.exposed, SealContext(accountID: id, kind: .loginHash)), id])
        }
        if let credentials {
            try db.execute(
                sql: """
                    UPDATE skylogin SET credentials = ?, skype_name = ?, obtained_at = ?, expires_at = ?
                    WHERE account_id = ?
                    """,
                arguments: [
                    try sealer.seal(credentials.value.exposed, SealContext(accountID: id, kind: .skyloginCredentials)),
                    try credentials.subject.map {
                        try sealer.seal($0, SealContext(accountID: id, kind: .skypeName))
                    },
                    credentials.obtainedAt.timeIntervalSince1970,
                    credentials.expiresAt.timeIntervalSince1970, id,
                ])
        }
    }

    /// The kinds `derived_credentials` holds, with the seal context kind of each.
    static func derivedSecretKind(_ kind: CredentialKind) -> SecretKind? {
        switch kind {
        case .skypetoken: .skypetoken
        case .uic: .uic
        default: nil
        }
    }

    /// A skypetoken or UIC with its times, replacing the stored one.
    func putDerived(_ db: Database, _ id: Int64, _ kind: CredentialKind, _ credential: Credential) throws {
        guard let secretKind = Self.derivedSecretKind(kind) else {
            throw BrokerError(.internalError, "\(kind.name) is not kept in derived_credentials")
        }
        let sealed = try sealer.seal(credential.value.exposed, SealContext(accountID: id, kind: secretKind))
        try db.execute(
            sql: """
                INSERT INTO derived_credentials (account_id, kind, value, obtained_at, expires_at, refresh_by, issued_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (account_id, kind) DO UPDATE SET value = excluded.value,
                    obtained_at = excluded.obtained_at, expires_at = excluded.expires_at,
                    refresh_by = excluded.refresh_by, issued_at = excluded.issued_at
                """,
            arguments: [
                id, secretKind.rawValue, sealed, credential.obtainedAt.timeIntervalSince1970,
                credential.expiresAt.timeIntervalSince1970, credential.refreshBy?.timeIntervalSince1970,
                credential.issuedAt?.timeIntervalSince1970,
            ])
    }

    func putAccessToken(_ db: Database, _ id: Int64, _ token: AccessToken) throws {
        let sealed = try sealer.seal(
            token.value.exposed, SealContext(accountID: id, kind: .accessToken, scope: token.scope))
        try db.execute(
            sql: """
                INSERT INTO access_tokens (account_id, scope, value, obtained_at, expires_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (account_id, scope) DO UPDATE SET value = excluded.value,
                    obtained_at = excluded.obtained_at, expires_at = excluded.expires_at
                """,
            arguments: [
                id, token.scope.rawValue, sealed, token.obtainedAt.timeIntervalSince1970,
                token.expiresAt.timeIntervalSince1970,
            ])
    }
}
