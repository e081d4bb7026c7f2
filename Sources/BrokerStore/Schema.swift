import BrokerCore
import GRDB

enum Schema {
    static let keyCheckName = "key_check"
    static let keyCheckPlaintext = "tokenbroker key check v1"
    static let keyCheckContext = SealContext(storeWide: "key_check")

    /// The versioned schema. Never edit a registered migration: add a new one.
    ///
    /// - `meta`: store-wide values; `key_check` is a sealed known constant that tells at open
    ///   whether the given key is the database's.
    /// - `accounts`: one row per enrolled account. `name` and `realm` are in clear; the login is
    ///   sealed (`login_sealed`) and found by `login_mac`, an HMAC of the lowercased login and
    ///   the realm.
    /// - `secrets`: the refresh token, password and cookies of an account, sealed.
    /// - `access_tokens`: one sealed access token per account and scope, with its times.
    /// - `skylogin` (v5): an account's SkyLogin RSA key, a Skype name's login hash, and the signed
    ///   credentials, sealed; `accounts.login_kind` is `microsoft` or `skype`.
    /// - `site_tickets` (v4): an `rst` realm's compact ticket per account and site, sealed, with
    ///   the BinarySecret that came with it (sealed) and its times.
    ///
    /// - `derived_credentials` (v6): an account's skypetoken and UIC, sealed, with their times;
    ///   `secrets.expires_at` (v6) is the cookies' expiry, when known.
    ///
    /// Times are `REAL` seconds since 1970.
    static func migrator(sealer: Sealer) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (
                        name TEXT PRIMARY KEY NOT NULL,
                        value BLOB NOT NULL
                    );
                    CREATE TABLE accounts (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        name TEXT NOT NULL UNIQUE,
                        realm TEXT NOT NULL,
                        login_sealed BLOB NOT NULL,
                        login_mac BLOB NOT NULL UNIQUE,
                        state TEXT NOT NULL CHECK (state IN ('active', 'needs_reauth')),
                        state_reason TEXT,
                        created_at REAL NOT NULL
                    );
                    CREATE TABLE secrets (
                        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                        kind TEXT NOT NULL CHECK (kind IN ('refresh_token', 'password', 'cookies')),
                        value BLOB NOT NULL,
                        updated_at REAL NOT NULL,
                        PRIMARY KEY (account_id, kind)
                    );
                    CREATE TABLE access_tokens (
                        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                        scope TEXT NOT NULL,
                        value BLOB NOT NULL,
                        obtained_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        PRIMARY KEY (account_id, scope)
                    );
                    """)
            try db.execute(
                sql: "INSERT INTO meta (name, value) VALUES (?, ?)",
                arguments: [keyCheckName, try sealer.seal(keyCheckPlaintext, keyCheckContext)])
        }
        // v2: how the account's ssl-compact-ticket is obtained: `oauth` (the ssl.live.com
        // scope's token) or `rst` (RST.srf with the stored password).
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql:
                    "ALTER TABLE accounts ADD COLUMN ticket_method TEXT NOT NULL DEFAULT 'oauth' CHECK (ticket_method IN ('oauth', 'rst'))"
            )
        }
        // v3: account names are looked up by HMAC and kept sealed, so the file read alone
        // shows no name (names default to the login).
        migrator.registerMigration("v3") { db in
            try db.execute(sql: "ALTER TABLE accounts ADD COLUMN name_sealed BLOB")
            for row in try Row.fetchAll(db, sql: "SELECT id, name FROM accounts") {
                let id: Int64 = row["id"]
                let name: String = row["name"]
                try db.execute(
                    sql: "UPDATE accounts SET name = ?, name_sealed = ? WHERE id = ?",
                    arguments: [
                        sealer.nameMACs(name)[0], try sealer.seal(name, SealContext(accountID: id, kind: .accountName)),
                        id,
                    ])
            }
        }
        // v4: RST.srf site tickets of the accounts of `rst` realms (revival servers). The site
        // address is in clear, like an access token's scope; ticket and BinarySecret are sealed.
        migrator.registerMigration("v4") { db in
            try db.execute(
                sql: """
                    CREATE TABLE site_tickets (
                        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                        site TEXT NOT NULL,
                        value BLOB NOT NULL,
                        proof_key BLOB,
                        obtained_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        PRIMARY KEY (account_id, site)
                    );
                    """)
        }
        // v5: SkyLogin. `login_kind` tells a Skype name from a Microsoft account; `skylogin` holds
        // an account's RSA key, a Skype name's login hash, and the signed credentials with their
        // times, each sealed.
        migrator.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    ALTER TABLE accounts ADD COLUMN login_kind TEXT NOT NULL DEFAULT 'microsoft'
                        CHECK (login_kind IN ('microsoft', 'skype'));
                    CREATE TABLE skylogin (
                        account_id INTEGER PRIMARY KEY NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                        client_key BLOB,
                        login_hash BLOB,
                        credentials BLOB,
                        skype_name BLOB,
                        obtained_at REAL,
                        expires_at REAL
                    );
                    """)
        }
        // v6: skypetokens and UICs, sealed, so that a restart serves them until their own refresh
        // point instead of fetching every one again; and the cookies' expiry, so that a restart
        // does not sign in again to learn it.
        migrator.registerMigration("v6") { db in
            try db.execute(
                sql: """
                    CREATE TABLE derived_credentials (
                        account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
                        kind TEXT NOT NULL CHECK (kind IN ('skypetoken', 'uic')),
                        value BLOB NOT NULL,
                        obtained_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        refresh_by REAL,
                        issued_at REAL,
                        PRIMARY KEY (account_id, kind)
                    );
                    ALTER TABLE secrets ADD COLUMN expires_at REAL;
                    """)
        }
        return migrator
    }
}
