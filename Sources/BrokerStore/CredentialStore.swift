import BrokerCore
import Crypto
import Foundation
import GRDB
import Synchronization

/// The daemon's credential database: every account's refresh token, access tokens, password
/// and cookies, in one SQLite file.
///
/// - The file is `tokenbroker.sqlite` in the state directory, mode 0600 (as are its `-wal` and
///   `-shm` files), in WAL mode, with `synchronous=FULL` on the write connection so a committed
///   credential survives a power loss, and `secure_delete=ON` so deleted values are
///   overwritten.
/// - Secret columns and the login are sealed with AES-256-GCM under a key derived from the
///   32-byte master key; the additional authenticated data binds the account's internal id, the
///   kind of secret and the scope, so a sealed value moved to another row or column fails to
///   open. Every sealed value names the key id that sealed it; the first key given seals, the
///   others can only open (for a future re-key).
/// - Every error is a `BrokerError` whose message holds no secret.
///
/// Safe to use from many tasks at once. The methods block on the database: writes wait for
/// the disk (`fsync`), so call them off latency-critical threads.
public final class CredentialStore: Sendable {
    /// The database file's name in the state directory.
    public static let databaseFileName = "tokenbroker.sqlite"

    /// The path of the database file.
    public let databasePath: String

    let pool: DatabasePool
    private let sealerState: Mutex<Sealer>
    private let closed = Mutex(false)
    /// The key file the key came from, when it is one the daemon may replace after a rekey.
    private let keyFile: URL?

    /// The keys: the current one seals, every one opens. A rekey swaps it.
    var sealer: Sealer { sealerState.withLock { $0 } }

    /// The id of the key that seals new values (16 hex digits), for diagnostics.
    public var currentKeyID: String { sealer.current.idHex }

    // MARK: - Opening

    /// Opens the store in `directory` (created with mode 0700 if missing) with the key in
    /// `keyFile`.
    ///
    /// - If the key file is missing and the database is new (no file, an empty file, or no
    ///   schema in it), a key file with 32 random bytes and mode 0600 is created first.
    /// - If the key file is missing but the database has its schema, this throws: a new key
    ///   could not open the existing secrets.
    /// - If the key is not the database's (checked against a sealed constant), this throws.
    ///
    /// The key file holds exactly 32 raw bytes, or 64 hex characters and an optional newline
    /// (see ``KeyFile``).
    public static func open(directory: URL, keyFile: URL, credentialsDirectory: String? = nil) throws -> CredentialStore {
        try ensureDirectory(directory)
        let databasePath = directory.appendingPathComponent(databaseFileName).path
        // A systemd credential (LoadCredential/LoadCredentialEncrypted) wins over the key file.
        if let credentialsDirectory {
            let credential = URL(fileURLWithPath: credentialsDirectory).appendingPathComponent(credentialName)
            if FileManager.default.fileExists(atPath: credential.path) {
                return try CredentialStore(databasePath: databasePath, keys: [try KeyFile.read(credential)], keyFile: nil)
            }
        }
        let key: SymmetricKey
        if FileManager.default.fileExists(atPath: keyFile.path) {
            key = try KeyFile.read(keyFile)
        } else {
            if try databaseIsInitialized(databasePath) {
                throw BrokerError(
                    .internalError,
                    "database exists but its key file \(keyFile.path) is missing; refusing to start",
                    hint: "restore the key file; to start over instead, move \(databasePath) aside (every enrolled account is lost)")
            }
            key = try KeyFile.generate(at: keyFile)
        }
        return try CredentialStore(databasePath: databasePath, keys: [key], keyFile: keyFile)
    }

    /// The name of the systemd credential that holds the key.
    public static let credentialName = "tokenbroker.key"

    /// Opens (or creates) the database at `databasePath` with the given master keys: 32 bytes
    /// each; the first seals new values, all of them can open. Use this when the key does not
    /// come from a key file (a systemd credential, a test).
    ///
    /// Throws if the database was created with a key that is not among `keys`, or by a newer
    /// version of the schema.
    public convenience init(databasePath: String, keys: [SymmetricKey]) throws {
        try self.init(databasePath: databasePath, keys: keys, keyFile: nil)
    }

    init(databasePath: String, keys: [SymmetricKey], keyFile: URL?) throws {
        let sealer = try Sealer(masterKeys: keys)
        // Create the file with mode 0600 before SQLite opens it; SQLite gives the -wal and -shm
        // files the mode of the database file.
        try enforceOwnerOnlyMode(databasePath, create: true)

        var config = Configuration()
        config.label = "tokenbroker.store"
        config.busyMode = .timeout(10)
        config.foreignKeysEnabled = true
        config.publicStatementArguments = false
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA trusted_schema = OFF")
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: databasePath, configuration: config)
        } catch {
            throw storeError(error, "cannot open the database \(databasePath)")
        }
        do {
            try pool.writeWithoutTransaction { db in
                // DatabasePool sets synchronous=NORMAL when it turns WAL on: undo that on the
                // one write connection. Credential writes must be durable when they return.
                try db.execute(sql: "PRAGMA synchronous = FULL")
                let journalMode = try String.fetchOne(db, sql: "PRAGMA journal_mode")
                guard journalMode == "wal" else {
                    throw BrokerError(.internalError, "the database is not in WAL mode")
                }
            }
            try Self.enforceCompanionFileModes(databasePath)
            let migrator = Schema.migrator(sealer: sealer)
            if try pool.read({ try migrator.hasBeenSuperseded($0) }) {
                throw BrokerError(
                    .internalError,
                    "the database \(databasePath) was written by a newer version of tokenbroker; refusing to start")
            }
            try Self.verifyKeyCheck(pool, sealer, required: false)
            try migrator.migrate(pool)
            try Self.verifyKeyCheck(pool, sealer, required: true)
            try Self.enforceCompanionFileModes(databasePath)
        } catch {
            try? pool.close()
            throw storeError(error, "cannot open the database \(databasePath)")
        }
        self.databasePath = databasePath
        self.pool = pool
        self.sealerState = Mutex(sealer)
        self.keyFile = keyFile
    }

    // MARK: - Rekey

    /// What a rekey did.
    public struct RekeyResult: Sendable {
        /// The id of the new key (16 hex digits).
        public var keyID: String
        /// How many sealed values were re-sealed.
        public var resealed: Int
        /// The key file now holding the new key, when the store could replace it; nil when the
        /// key came from elsewhere (a systemd credential), which the operator must replace.
        public var keyFileReplaced: String?
    }

    /// Re-seals every sealed value and lookup column under a new 32-byte key, in one
    /// transaction, while reads and writes go on: from the start, values open under either key.
    /// Then, when the key came from a key file, the file is replaced (atomically, mode 0600).
    public func rekey(to keyBytes: [UInt8]) throws -> RekeyResult {
        guard keyBytes.count == StoreKey.byteCount else {
            throw BrokerError(.badRequest, "a key is exactly 32 bytes (64 hex characters)")
        }
        let old = sealer
        let next = try Sealer(masterKeys: [SymmetricKey(data: keyBytes)] + old.keys.map(\.master))
        // From here new writes seal under the new key, and every value opens under either.
        sealerState.withLock { $0 = next }
        var count = 0
        do {
            try write("cannot re-seal the store") { db in
                for row in try Row.fetchAll(db, sql: "SELECT account_id, kind, value FROM secrets") {
                    let id: Int64 = row["account_id"]
                    guard let kind = SecretKind(rawValue: row["kind"]) else { continue }
                    let context = SealContext(accountID: id, kind: kind)
                    let plain = try self.open(row["value"], context, account: "row \(id)")
                    try db.execute(
                        sql: "UPDATE secrets SET value = ? WHERE account_id = ? AND kind = ?",
                        arguments: [try next.seal(plain, context), id, kind.rawValue])
                    count += 1
                }
                for row in try Row.fetchAll(db, sql: "SELECT account_id, scope, value FROM access_tokens") {
                    let id: Int64 = row["account_id"]
                    let scopeName: String = row["scope"]
                    guard let scope = Scope(rawValue: scopeName) else { continue }
                    let context = SealContext(accountID: id, kind: .accessToken, scope: scope)
                    let plain = try self.open(row["value"], context, account: "row \(id)")
                    try db.execute(
                        sql: "UPDATE access_tokens SET value = ? WHERE account_id = ? AND scope = ?",
                        arguments: [try next.seal(plain, context), id, scopeName])
                    count += 1
                }
                for row in try Row.fetchAll(db, sql: "SELECT id, realm, login_sealed, name_sealed FROM accounts") {
                    let id: Int64 = row["id"]
                    let realm: String = row["realm"]
                    let login = try self.open(row["login_sealed"], SealContext(accountID: id, kind: .login), account: "row \(id)")
                    let name = try self.open(row["name_sealed"], SealContext(accountID: id, kind: .accountName), account: "row \(id)")
                    try db.execute(
                        sql: "UPDATE accounts SET login_sealed = ?, login_mac = ?, name_sealed = ?, name = ? WHERE id = ?",
                        arguments: [
                            try next.seal(login, SealContext(accountID: id, kind: .login)),
                            next.currentLoginMAC(login: login, realm: realm),
                            try next.seal(name, SealContext(accountID: id, kind: .accountName)), next.nameMACs(name)[0], id,
                        ])
                    count += 2
                }
                try db.execute(
                    sql: "UPDATE meta SET value = ? WHERE name = ?",
                    arguments: [try next.seal(Schema.keyCheckPlaintext, Schema.keyCheckContext), Schema.keyCheckName])
            }
        } catch {
            sealerState.withLock { $0 = old }
            throw error
        }
        var replaced: String?
        if let keyFile {
            try KeyFile.replace(at: keyFile, with: keyBytes)
            replaced = keyFile.path
        }
        return RekeyResult(keyID: next.current.idHex, resealed: count, keyFileReplaced: replaced)
    }

    private static func ensureDirectory(_ directory: URL) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw BrokerError(.internalError, "state directory \(directory.path) is not a directory")
            }
            return
        }
        do {
            try FileManager.default.createDirectory(
                at: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o700])
        } catch {
            throw BrokerError(.internalError, "cannot create state directory \(directory.path)", cause: error)
        }
    }

    private static func enforceCompanionFileModes(_ databasePath: String) throws {
        for suffix in ["-wal", "-shm"] {
            try enforceOwnerOnlyMode(databasePath + suffix, create: false)
        }
    }

    /// Whether the database at `path` has a schema (so its key must exist somewhere).
    static func databaseIsInitialized(_ path: String) throws -> Bool {
        let fileManager = FileManager.default
        guard fileManager.fileExists(atPath: path) || fileManager.fileExists(atPath: path + "-wal")
        else { return false }
        try enforceOwnerOnlyMode(path, create: true)
        do {
            let queue = try DatabaseQueue(path: path)
            defer { try? queue.close() }
            try enforceCompanionFileModes(path)
            return try queue.read { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0 > 0
            }
        } catch {
            throw storeError(error, "cannot inspect the database \(path)")
        }
    }

    /// Checks that one of the keys opens the sealed constant in `meta`. When `required` is
    /// false, a database without it (a new one) passes.
    private static func verifyKeyCheck(_ pool: DatabasePool, _ sealer: Sealer, required: Bool) throws {
        let sealed: Data? = try pool.read { db in
            guard try db.tableExists("meta") else { return nil }
            return try Data.fetchOne(
                db, sql: "SELECT value FROM meta WHERE name = ?", arguments: [Schema.keyCheckName])
        }
        guard let sealed else {
            if required {
                throw BrokerError(
                    .internalError, "the database has no key check value; refusing to start")
            }
            return
        }
        let given = sealer.keys.map(\.idHex).joined(separator: ", ")
        do throws(Sealer.OpenFailure) {
            let text = try sealer.open(sealed, Schema.keyCheckContext)
            guard text == Schema.keyCheckPlaintext else { throw Sealer.OpenFailure.notAuthentic }
        } catch .unknownKey(let id) {
            throw BrokerError(
                .internalError,
                "the key does not belong to this database: it was sealed with key \(id), the key given is \(given); refusing to start",
                hint: "restore the key file that was created with this database")
        } catch {
            throw BrokerError(
                .internalError,
                "the database's key check value does not open with key \(given); the key or the database is corrupt; refusing to start")
        }
    }

    // MARK: - Closing

    /// Truncates the write-ahead log and closes every connection. Later calls throw. Calling
    /// it again does nothing.
    public func close() throws {
        let wasClosed = closed.withLock { closed in
            defer { closed = true }
            return closed
        }
        if wasClosed { return }
        try? pool.barrierWriteWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        do {
            try pool.close()
        } catch {
            throw storeError(error, "cannot close the database")
        }
    }

    // MARK: - Reading

    /// Every account, by name.
    public func accounts() throws -> [StoredAccount] {
        try read("cannot list accounts") { db in
            try self.fetchAccounts(db, name: nil).map(\.account)
        }
    }

    /// The account named `name`, or nil.
    public func account(named name: AccountName) throws -> StoredAccount? {
        try read("cannot read account \(name)") { db in
            try self.fetchAccounts(db, name: name).first?.account
        }
    }

    /// The name of the account enrolled with `login` (compared case-insensitively) in `realm`.
    public func accountName(login: String, realm: String) throws -> AccountName? {
        let macs = sealer.loginMACs(login: login, realm: realm)
        return try read("cannot look up a login") { db in
            try self.accountName(db, loginMACs: macs)
        }
    }

    /// The secrets of `name`. Throws `.notFound` if there is no such account.
    public func credentials(for name: AccountName) throws -> StoredCredentials {
        try read("cannot read the credentials of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            return try self.fetchCredentials(db, accountID: id, name: name)
        }
    }

    /// Every account with its secrets, by name, read in one transaction (for start-up).
    public func loadAll() throws -> [(StoredAccount, StoredCredentials)] {
        try read("cannot load the accounts") { db in
            try self.fetchAccounts(db, name: nil).map { row in
                (row.account, try self.fetchCredentials(db, accountID: row.id, name: row.account.name))
            }
        }
    }

    // MARK: - Writing

    /// Enrolls an account, with all its secrets, in one transaction. Its state is `active`.
    ///
    /// Throws `.conflict` if `name` exists, or if `login` (case-insensitively) is already
    /// enrolled in `realm` under any name; nothing is written then. A later access token for
    /// the same scope replaces an earlier one.
    public func createAccount(
        name: AccountName, realm: String, login: String, refreshToken: Secret?,
        accessTokens: [AccessToken], password: Secret?, cookies: Secret?, ticketMethod: String = "oauth"
    ) throws {
        guard ["oauth", "rst"].contains(ticketMethod) else { throw BrokerError(.badRequest, "unknown ticket method") }
        guard !realm.isEmpty else { throw BrokerError(.badRequest, "the realm name is empty") }
        guard !login.isEmpty else { throw BrokerError(.badRequest, "the login is empty") }
        let macs = sealer.loginMACs(login: login, realm: realm)
        let now = Date()
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
                    self.sealer.nameMACs(name.rawValue)[0], realm, macs[0], AccountState.active.rawValue, now.timeIntervalSince1970, ticketMethod,
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
            try self.putSecret(db, id, .cookies, cookies, now)
            for token in accessTokens {
                try self.putAccessToken(db, id, token)
            }
        }
    }

    /// Commits the result of a refresh: the access token for its scope and, when the server
    /// rotated it, the new refresh token, in one durable transaction. Call it before serving
    /// the token or forgetting the old refresh token. With `rotatedRefreshToken` nil the stored
    /// refresh token is kept. Throws `.notFound` if there is no such account.
    public func commitRefresh(
        account name: AccountName, accessToken: AccessToken, rotatedRefreshToken: Secret?, cookies: Secret? = nil
    ) throws {
        let now = Date()
        try write("cannot store the refreshed token of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            try self.putAccessToken(db, id, accessToken)
            if let rotatedRefreshToken {
                try self.putSecret(db, id, .refreshToken, rotatedRefreshToken, now)
            }
            if let cookies {
                try self.putSecret(db, id, .cookies, cookies, now)
            }
        }
    }

    /// Sets how the account's ssl-compact-ticket is obtained: `oauth` or `rst`.
    public func setTicketMethod(_ method: String, for name: AccountName) throws {
        guard ["oauth", "rst"].contains(method) else { throw BrokerError(.badRequest, "unknown ticket method") }
        try write("cannot set the ticket method of \(name)") { db in
            try db.execute(sql: "UPDATE accounts SET ticket_method = ? WHERE id = ?", arguments: [method, try Self.requireAccountID(db, name, self.sealer)])
            guard db.changesCount > 0 else { throw Self.notFound(name) }
        }
    }

    /// Sets the state of an account and why. Throws `.notFound` if there is no such account.
    public func setState(_ state: AccountState, reason: String?, for name: AccountName) throws {
        try write("cannot set the state of \(name)") { db in
            try db.execute(
                sql: "UPDATE accounts SET state = ?, state_reason = ? WHERE id = ?",
                arguments: [state.rawValue, reason, try Self.accountID(db, name, self.sealer)])
            guard db.changesCount > 0 else { throw Self.notFound(name) }
        }
    }

    /// Replaces the grant of an existing account after a new sign-in: the refresh token, every
    /// access token (those not in `accessTokens` are deleted) and the cookies (nil deletes
    /// them), and sets the state to `active` with no reason, in one transaction. The password
    /// is kept. Throws `.notFound` if there is no such account.
    public func replaceGrant(
        account name: AccountName, refreshToken: Secret?, accessTokens: [AccessToken], cookies: Secret?
    ) throws {
        let now = Date()
        try write("cannot store the new sign-in of \(name)") { db in
            let id = try Self.requireAccountID(db, name, self.sealer)
            try self.putSecret(db, id, .refreshToken, refreshToken, now)
            try db.execute(sql: "DELETE FROM access_tokens WHERE account_id = ?", arguments: [id])
            for token in accessTokens {
                try self.putAccessToken(db, id, token)
            }
            try self.putSecret(db, id, .cookies, cookies, now)
            try db.execute(
                sql: "UPDATE accounts SET state = ?, state_reason = NULL WHERE id = ?",
                arguments: [AccountState.active.rawValue, id])
        }
    }

    /// Stores (or with nil, deletes) the password, cookies or refresh token of an account.
    /// Throws `.badRequest` for other kinds and `.notFound` if there is no such account.
    public func setSecret(_ secret: Secret?, kind: SecretKind, account name: AccountName) throws {
        guard Self.accountSecretKinds.contains(kind) else {
            throw BrokerError(.badRequest, "\(kind.rawValue) is not stored with setSecret")
        }
        let now = Date()
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
    public func deleteAccount(_ name: AccountName) throws -> Bool {
        let deleted = try write("cannot delete account \(name)") { db in
            try db.execute(sql: "DELETE FROM accounts WHERE id = ?", arguments: [try Self.accountID(db, name, self.sealer)])
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

    // MARK: - Internals

    static let accountSecretKinds: Set<SecretKind> = [.refreshToken, .password, .cookies]

    private struct AccountRow {
        var id: Int64
        var account: StoredAccount
    }

    private func checkOpen() throws {
        if closed.withLock({ $0 }) {
            throw BrokerError(.internalError, "the credential store is closed")
        }
    }

    private func read<T>(_ action: String, _ body: (Database) throws -> T) throws -> T {
        try checkOpen()
        do {
            return try pool.read(body)
        } catch {
            throw storeError(error, action)
        }
    }

    private func write<T>(_ action: String, _ body: (Database) throws -> T) throws -> T {
        try checkOpen()
        do {
            return try pool.write(body)
        } catch {
            throw storeError(error, action)
        }
    }

    private static func notFound(_ name: AccountName) -> BrokerError {
        BrokerError(.notFound, "no account named \(name)")
    }

    private static func accountID(_ db: Database, _ name: AccountName, _ sealer: Sealer) throws -> Int64? {
        let macs = sealer.nameMACs(name.rawValue)
        let placeholders = Array(repeating: "?", count: macs.count).joined(separator: ", ")
        return try Int64.fetchOne(db, sql: "SELECT id FROM accounts WHERE name IN (\(placeholders))", arguments: StatementArguments(macs))
    }

    private static func requireAccountID(_ db: Database, _ name: AccountName, _ sealer: Sealer) throws -> Int64 {
        guard let id = try accountID(db, name, sealer) else { throw notFound(name) }
        return id
    }

    private func accountName(_ db: Database, loginMACs: [Data]) throws -> AccountName? {
        let placeholders = Array(repeating: "?", count: loginMACs.count).joined(separator: ", ")
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT id, name_sealed FROM accounts WHERE login_mac IN (\(placeholders)) LIMIT 1",
                arguments: StatementArguments(loginMACs))
        else { return nil }
        let id: Int64 = row["id"]
        return AccountName(rawValue: try open(row["name_sealed"], SealContext(accountID: id, kind: .accountName), account: "row \(id)"))
    }

    private func putSecret(_ db: Database, _ id: Int64, _ kind: SecretKind, _ secret: Secret?, _ now: Date)
        throws
    {
        guard let secret else {
            try db.execute(
                sql: "DELETE FROM secrets WHERE account_id = ? AND kind = ?", arguments: [id, kind.rawValue])
            return
        }
        let sealed = try sealer.seal(secret.exposed, SealContext(accountID: id, kind: kind))
        try db.execute(
            sql: """
                INSERT INTO secrets (account_id, kind, value, updated_at) VALUES (?, ?, ?, ?)
                ON CONFLICT (account_id, kind) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
                """,
            arguments: [id, kind.rawValue, sealed, now.timeIntervalSince1970])
    }

    private func putAccessToken(_ db: Database, _ id: Int64, _ token: AccessToken) throws {
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

    private func open(_ sealed: Data, _ context: SealContext, account: String) throws -> String {
        do {
            return try sealer.open(sealed, context)
        } catch .malformed {
            throw BrokerError(
                .internalError, "the stored \(context.label) of account \(account) is not a sealed value")
        } catch .unknownKey(let id) {
            throw BrokerError(
                .internalError,
                "the stored \(context.label) of account \(account) is sealed with key \(id), which was not given")
        } catch .notAuthentic {
            throw BrokerError(
                .internalError,
                "the stored \(context.label) of account \(account) failed authentication: the database was modified or the value belongs to another row")
        }
    }

    private func fetchAccounts(_ db: Database, name: AccountName?) throws -> [AccountRow] {
        var sql = """
            SELECT a.id, a.name_sealed, a.realm, a.login_sealed, a.state, a.state_reason, a.created_at, a.ticket_method,
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
        return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            let id: Int64 = row["id"]
            let rawName = try open(row["name_sealed"], SealContext(accountID: id, kind: .accountName), account: "row \(id)")
            guard let name = AccountName(rawValue: rawName) else {
                throw BrokerError(.internalError, "account row \(id) has an invalid name")
            }
            let rawState: String = row["state"]
            guard let state = AccountState(rawValue: rawState) else {
                throw BrokerError(.internalError, "account \(name) has an unknown state")
            }
            let login = try open(row["login_sealed"], SealContext(accountID: id, kind: .login), account: rawName)
            let account = StoredAccount(
                name: name, realm: row["realm"], login: login, state: state, stateReason: row["state_reason"],
                createdAt: Date(timeIntervalSince1970: row["created_at"]),
                hasRefreshToken: row["has_refresh_token"], hasPassword: row["has_password"],
                hasCookies: row["has_cookies"], ticketMethod: row["ticket_method"])
            return AccountRow(id: id, account: account)
        }.sorted { $0.account.name < $1.account.name }
    }

    private func fetchCredentials(_ db: Database, accountID id: Int64, name: AccountName) throws
        -> StoredCredentials
    {
        var credentials = StoredCredentials()
        for row in try Row.fetchAll(
            db, sql: "SELECT kind, value FROM secrets WHERE account_id = ?", arguments: [id])
        {
            let rawKind: String = row["kind"]
            guard let kind = SecretKind(rawValue: rawKind), Self.accountSecretKinds.contains(kind) else {
                throw BrokerError(.internalError, "account \(name) has a secret of unknown kind")
            }
            let secret = Secret(try open(row["value"], SealContext(accountID: id, kind: kind), account: name.rawValue))
            switch kind {
            case .refreshToken: credentials.refreshToken = secret
            case .password: credentials.password = secret
            case .cookies: credentials.cookies = secret
            case .accessToken, .login, .accountName: break
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
        return credentials
    }
}
