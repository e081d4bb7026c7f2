import BrokerCore
import Crypto
import Foundation
import GRDB
import Locks

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
package final class CredentialStore: Sendable {
    /// The database file's name in the state directory.
    package static let databaseFileName = "tokenbroker.sqlite"

    /// The path of the database file.
    package let databasePath: String

    let pool: DatabasePool
    let sealerState: LockedValue<Sealer>
    private let closed = LockedValue(false)
    /// The key file the key came from, when it is one the daemon may replace after a rekey.
    let keyFile: URL?

    /// The keys: the current one seals, every one opens. A rekey swaps it.
    var sealer: Sealer { sealerState.withLock { $0 } }

    /// The id of the key that seals new values (16 hex digits), for diagnostics.
    package var currentKeyID: String { sealer.current.idHex }

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
    package static func open(directory: URL, keyFile: URL, credentialsDirectory: String? = nil) throws
        -> CredentialStore
    {
        try ensureDirectory(directory)
        let databasePath = directory.appendingPathComponent(databaseFileName).path
        // A systemd credential (LoadCredential/LoadCredentialEncrypted) wins over the key file.
        if let credentialsDirectory {
            let credential = URL(fileURLWithPath: credentialsDirectory).appendingPathComponent(credentialName)
            if FileManager.default.fileExists(atPath: credential.path) {
                return try CredentialStore(
                    databasePath: databasePath, keys: [try KeyFile.read(credential)], keyFile: nil)
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
                    hint:
                        "restore the key file; to start over instead, move \(databasePath) aside (every enrolled account is lost)"
                )
            }
            key = try KeyFile.generate(at: keyFile)
        }
        return try CredentialStore(databasePath: databasePath, keys: [key], keyFile: keyFile)
    }

    /// The name of the systemd credential that holds the key.
    package static let credentialName = "tokenbroker.key"

    /// Opens (or creates) the database at `databasePath` with the given master keys: 32 bytes
    /// each; the first seals new values, all of them can open. Use this when the key does not
    /// come from a key file (a systemd credential, a test).
    ///
    /// Throws if the database was created with a key that is not among `keys`, or by a newer
    /// version of the schema.
    package convenience init(databasePath: String, keys: [SymmetricKey]) throws {
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
        // Reads are rare (the start-up load, a read of an account not loaded yet, status): two
        // readers are plenty. The page caches are small, 512 KiB for the writer and 128 KiB for
        // each reader (SQLite's default is 2,000 pages, about 8 MiB, per connection; at 10,000
        // accounts a 2 MiB cache was full on all three connections after the start-up load): the
        // daemon serves from memory, the load reads each row once, and the file's pages stay in
        // the kernel's page cache anyway.
        config.maximumReaderCount = 2
        config.prepareDatabase { db in
            try db.execute(sql: db.configuration.readonly ? "PRAGMA cache_size = -128" : "PRAGMA cache_size = -512")
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
        self.sealerState = LockedValue(sealer)
        self.keyFile = keyFile
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
                "the database's key check value does not open with key \(given); the key or the database is corrupt; refusing to start"
            )
        }
    }

    // MARK: - Closing

    /// Truncates the write-ahead log and closes every connection. Later calls throw. Calling
    /// it again does nothing.
    package func close() throws {
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

    // MARK: - Database access

    func checkOpen() throws {
        if closed.withLock({ $0 }) {
            throw BrokerError(.internalError, "the credential store is closed")
        }
    }

    func read<T>(_ action: String, _ body: (Database) throws -> T) throws -> T {
        try checkOpen()
        do {
            return try pool.read(body)
        } catch {
            throw storeError(error, action)
        }
    }

    func write<T>(_ action: String, _ body: (Database) throws -> T) throws -> T {
        try checkOpen()
        do {
            return try pool.write(body)
        } catch {
            throw storeError(error, action)
        }
    }

    static func notFound(_ name: AccountName) -> BrokerError {
        BrokerError(.notFound, "no account named \(name)")
    }

    static func accountID(_ db: Database, _ name: AccountName, _ sealer: Sealer) throws -> Int64? {
        let macs = sealer.nameMACs(name.rawValue)
        let placeholders = Array(repeating: "?", count: macs.count).joined(separator: ", ")
        return try Int64.fetchOne(
            db, sql: "SELECT id FROM accounts WHERE name IN (\(placeholders))", arguments: StatementArguments(macs))
    }

    static func requireAccountID(_ db: Database, _ name: AccountName, _ sealer: Sealer) throws -> Int64 {
        guard let id = try accountID(db, name, sealer) else { throw notFound(name) }
        return id
    }

    func accountName(_ db: Database, loginMACs: [Data]) throws -> AccountName? {
        let placeholders = Array(repeating: "?", count: loginMACs.count).joined(separator: ", ")
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT id, name_sealed FROM accounts WHERE login_mac IN (\(placeholders)) LIMIT 1",
                arguments: StatementArguments(loginMACs))
        else { return nil }
        let id: Int64 = row["id"]
        return AccountName(
            rawValue: try open(row["name_sealed"], SealContext(accountID: id, kind: .accountName), account: "row \(id)")
        )
    }

    func open(_ sealed: Data, _ context: SealContext, account: String) throws -> String {
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
                "the stored \(context.label) of account \(account) failed authentication: the database was modified or the value belongs to another row"
            )
        }
    }
}
