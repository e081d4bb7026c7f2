import BrokerCore
import Crypto
import Foundation
import GRDB
import Testing

@testable import BrokerStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("Files, pragmas and keys")
struct StoreFileTests {
    @Test("database, -wal, -shm and key file are 0600; a new state directory is 0700")
    func fileModes() throws {
        // With the usual umask 022, SQLite's default mode would leave the files 0644.
        let previous = umask(0o022)
        defer { umask(previous) }
        try withTemporaryDirectory { tmp in
            let state = tmp.appendingPathComponent("state")
            let keyFile = state.appendingPathComponent("store.key")
            let store = try CredentialStore.open(directory: state, keyFile: keyFile)
            try Enrollment("modes").create(in: store)
            let db = databaseURL(state).path
            #expect(fileMode(db) == 0o600)
            #expect(fileMode(db + "-wal") == 0o600)
            #expect(fileMode(db + "-shm") == 0o600)
            #expect(fileMode(keyFile.path) == 0o600)
            #expect(fileSize(keyFile.path) == 32)
            #expect(fileMode(state.path) == 0o700)
            try store.close()

            // A database file whose mode was widened is narrowed again at open.
            #expect(chmod(db, 0o644) == 0)
            let reopened = try CredentialStore.open(directory: state, keyFile: keyFile)
            #expect(fileMode(db) == 0o600)
            try reopened.close()
        }
    }

    @Test("the write connection uses WAL, synchronous=FULL and secure_delete")
    func pragmas() throws {
        try withTemporaryDirectory { dir in
            let store = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            defer { try? store.close() }
            let (journal, synchronous, secureDelete) = try store.pool.write { db in
                (
                    try String.fetchOne(db, sql: "PRAGMA journal_mode"),
                    try Int.fetchOne(db, sql: "PRAGMA synchronous"),
                    try Int.fetchOne(db, sql: "PRAGMA secure_delete")
                )
            }
            #expect(journal == "wal")
            #expect(synchronous == 2) // FULL
            // Note: Debian's libsqlite3 is built with SQLITE_SECURE_DELETE, so on such a system
            // this holds even without the store's own pragma.
            #expect(secureDelete == 1)
            // The migrations are GRDB's, versioned.
            let applied = try store.pool.read { db in
                try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
            }
            #expect(applied == ["v1", "v2", "v3", "v4", "v5", "v6"])
        }
    }

    @Test("a new database gets a new key file; an empty database file counts as new")
    func generatesKeyForNewDatabase() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            // A zero-byte database file (a crash before the schema was written).
            #expect(FileManager.default.createFile(atPath: databaseURL(dir).path, contents: Data()))
            let store = try CredentialStore.open(directory: dir, keyFile: keyFile)
            let e = Enrollment("fresh")
            try e.create(in: store)
            try store.close()
            #expect(fileSize(keyFile.path) == 32)

            // The generated key is the one in use.
            let key = try KeyFile.read(keyFile)
            let again = try CredentialStore(databasePath: databaseURL(dir).path, keys: [key])
            #expect(try again.credentials(for: e.name) == e.expectedCredentials)
            try again.close()
        }
    }

    @Test("an existing database without its key file is refused, and no key is made")
    func refusesMissingKeyFile() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            let store = try CredentialStore.open(directory: dir, keyFile: keyFile)
            try Enrollment("keyless").create(in: store)
            try store.close()
            try FileManager.default.removeItem(at: keyFile)

            let error = expectBrokerError(.internalError) {
                _ = try CredentialStore.open(directory: dir, keyFile: keyFile)
            }
            #expect(error?.message.contains("refusing to start") == true)
            #expect(error?.message.contains("key file") == true)
            #expect(!FileManager.default.fileExists(atPath: keyFile.path))
        }
    }

    @Test("a database with its schema but no accounts is still refused without its key file")
    func refusesMissingKeyFileForEmptySchema() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            try CredentialStore.open(directory: dir, keyFile: keyFile).close()
            try FileManager.default.removeItem(at: keyFile)
            expectBrokerError(.internalError) {
                _ = try CredentialStore.open(directory: dir, keyFile: keyFile)
            }
            #expect(!FileManager.default.fileExists(atPath: keyFile.path))
        }
    }

    @Test("a wrong key is refused at open, through the key file and through the initializer")
    func refusesWrongKey() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            let store = try CredentialStore.open(directory: dir, keyFile: keyFile)
            let e = Enrollment("wrongkey")
            try e.create(in: store)
            try store.close()
            let rightKey = try KeyFile.read(keyFile)

            let error = expectBrokerError(.internalError) {
                _ = try CredentialStore(databasePath: databaseURL(dir).path, keys: [randomKey()])
            }
            #expect(error?.message.contains("refusing to start") == true)

            try Data(keyBytes(randomKey())).write(to: keyFile)
            expectBrokerError(.internalError) {
                _ = try CredentialStore.open(directory: dir, keyFile: keyFile)
            }

            // The right key still works: nothing was changed by the refused opens.
            let reopened = try CredentialStore(databasePath: databaseURL(dir).path, keys: [rightKey])
            #expect(try reopened.credentials(for: e.name) == e.expectedCredentials)
            try reopened.close()
        }
    }

    @Test("an old key given after the current one still opens what it sealed")
    func oldKeyOpens() throws {
        try withTemporaryDirectory { dir in
            let path = databaseURL(dir).path
            let old = randomKey()
            let new = randomKey()
            let store = try CredentialStore(databasePath: path, keys: [old])
            let e = Enrollment("rekey")
            try e.create(in: store)
            try store.close()

            let both = try CredentialStore(databasePath: path, keys: [new, old])
            #expect(try both.credentials(for: e.name) == e.expectedCredentials)
            #expect(both.currentKeyID == (try StoreKey(master: new)).idHex)
            // A value sealed now is sealed with the new key...
            try both.commitRefresh(
                account: e.name, accessToken: token("AT-new", .hotmail), rotatedRefreshToken: nil)
            try both.close()

            // ...so the old key alone opens the database but not that value.
            let oldOnly = try CredentialStore(databasePath: path, keys: [old])
            let error = expectBrokerError(.internalError) { _ = try oldOnly.credentials(for: e.name) }
            #expect(error?.message.contains("which was not given") == true)
            try oldOnly.close()
        }
    }

    @Test(
        "key files: 32 raw bytes or 64 hex characters (+ newline); anything else is refused",
        arguments: [
            ("raw", true), ("hex", true), ("hex+newline", true), ("HEX", true), ("31 bytes", false),
            ("33 bytes", false), ("63 hex", false), ("non-hex", false), ("empty", false),
            ("hex+2 newlines", false),
        ])
    func keyFileFormats(form: String, accepted: Bool) throws {
        try withTemporaryDirectory { dir in
            let key = randomKey()
            let bytes = keyBytes(key)
            let hexText = hex(bytes)
            let contents: [UInt8] =
                switch form {
                case "raw": bytes
                case "hex": Array(hexText.utf8)
                case "hex+newline": Array((hexText + "\n").utf8)
                case "HEX": Array(hexText.uppercased().utf8)
                case "31 bytes": Array(bytes.prefix(31))
                case "33 bytes": bytes + [0]
                case "63 hex": Array(hexText.prefix(63).utf8)
                case "non-hex": Array(("zz" + hexText.dropFirst(2)).utf8)
                case "empty": []
                default: Array((hexText + "\n\n").utf8)
                }
            let keyFile = dir.appendingPathComponent("key")
            try Data(contents).write(to: keyFile)
            chmod(keyFile.path, 0o600)
            if accepted {
                #expect(keyBytes(try KeyFile.read(keyFile)) == bytes)
                // And a store opened through the file opens with the same key given directly.
                let store = try CredentialStore.open(directory: dir, keyFile: keyFile)
                try store.close()
                try CredentialStore(databasePath: databaseURL(dir).path, keys: [key]).close()
            } else {
                expectBrokerError(.internalError) { _ = try KeyFile.read(keyFile) }
                expectBrokerError(.internalError) { _ = try CredentialStore.open(directory: dir, keyFile: keyFile) }
                // Refusing the key creates no database.
                #expect(!FileManager.default.fileExists(atPath: databaseURL(dir).path))
            }
        }
    }

    @Test("a key given directly must be 32 bytes")
    func refusesShortKey() throws {
        try withTemporaryDirectory { dir in
            expectBrokerError(.internalError) {
                _ = try CredentialStore(
                    databasePath: databaseURL(dir).path, keys: [SymmetricKey(size: .bits128)])
            }
            expectBrokerError(.internalError) {
                _ = try CredentialStore(databasePath: databaseURL(dir).path, keys: [])
            }
        }
    }
}
