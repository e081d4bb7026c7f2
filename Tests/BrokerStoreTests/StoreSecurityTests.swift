import BrokerCore
import Crypto
import Foundation
import GRDB
import Testing

@testable import BrokerStore

@Suite("Sealing, deletion and leaks")
struct StoreSecurityTests {
    enum Tamper: String, CaseIterable, CustomTestStringConvertible {
        case refreshTokenToOtherAccount
        case accessTokenToOtherAccount
        case passwordToRefreshTokenColumn
        case accessTokenToOtherScope
        case loginToOtherAccount
        case flippedByte

        var testDescription: String { rawValue }
    }

    /// Two accounts with every secret; one value of `a` is moved (or altered) by raw SQL.
    @Test("a sealed value moved to another row or column, or altered, fails to open", arguments: Tamper.allCases)
    func tamper(_ tamper: Tamper) throws {
        try withTemporaryDirectory { dir in
            let path = databaseURL(dir).path
            let key = randomKey()
            let a = Enrollment("tamper-a")
            let b = Enrollment("tamper-b")
            do {
                let store = try CredentialStore(databasePath: path, keys: [key])
                try a.create(in: store)
                try b.create(in: store)
                try store.close()
            }

            let queue = try rawQueue(path)
            try queue.write { db in
                // Names are stored as lookup MACs; a was created first.
                let ids = try Int64.fetchAll(db, sql: "SELECT id FROM accounts ORDER BY id")
                let idA = try #require(ids.first)
                let idB = try #require(ids.last)
                switch tamper {
                case .refreshTokenToOtherAccount:
                    try db.execute(
                        sql: """
                            UPDATE secrets SET value = (SELECT value FROM secrets WHERE account_id = ? AND kind = 'refresh_token')
                            WHERE account_id = ? AND kind = 'refresh_token'
                            """, arguments: [idA, idB])
                case .accessTokenToOtherAccount:
                    try db.execute(
                        sql: """
                            UPDATE access_tokens SET value = (SELECT value FROM access_tokens WHERE account_id = ? AND scope = ?)
                            WHERE account_id = ? AND scope = ?
                            """, arguments: [idA, Scope.skype.rawValue, idB, Scope.skype.rawValue])
                case .passwordToRefreshTokenColumn:
                    try db.execute(
                        sql: """
                            UPDATE secrets SET value = (SELECT value FROM secrets WHERE account_id = ? AND kind = 'password')
                            WHERE account_id = ? AND kind = 'refresh_token'
                            """, arguments: [idA, idA])
                case .accessTokenToOtherScope:
                    try db.execute(
                        sql: """
                            UPDATE access_tokens SET value = (SELECT value FROM access_tokens WHERE account_id = ? AND scope = ?)
                            WHERE account_id = ? AND scope = ?
                            """, arguments: [idA, Scope.skype.rawValue, idA, Scope.contacts.rawValue])
                case .loginToOtherAccount:
                    try db.execute(
                        sql: """
                            UPDATE accounts SET login_sealed = (SELECT login_sealed FROM accounts WHERE id = ?) WHERE id = ?
                            """, arguments: [idA, idB])
                case .flippedByte:
                    var value = try #require(
                        try Data.fetchOne(
                            db, sql: "SELECT value FROM secrets WHERE account_id = ? AND kind = 'cookies'",
                            arguments: [idA]))
                    value[value.count - 20] ^= 0x01
                    try db.execute(
                        sql: "UPDATE secrets SET value = ? WHERE account_id = ? AND kind = 'cookies'",
                        arguments: [value, idA])
                }
            }
            try queue.close()

            let store = try CredentialStore(databasePath: path, keys: [key])
            defer { try? store.close() }
            // The account whose row was written to fails; the other one still opens (control).
            let (victim, untouched): (Enrollment, Enrollment) =
                switch tamper {
                case .refreshTokenToOtherAccount, .accessTokenToOtherAccount, .loginToOtherAccount: (b, a)
                default: (a, b)
                }
            let error: BrokerError?
            if tamper == .loginToOtherAccount {
                error = expectBrokerError(.internalError) { _ = try store.account(named: victim.name) }
                expectBrokerError(.internalError) { _ = try store.accounts() }
                #expect(try store.account(named: untouched.name)?.login == untouched.login)
            } else {
                error = expectBrokerError(.internalError) { _ = try store.credentials(for: victim.name) }
                #expect(try store.credentials(for: untouched.name) == untouched.expectedCredentials)
            }
            expectBrokerError(.internalError) { _ = try store.loadAll() }
            #expect(error?.message.contains("failed authentication") == true)
            #expect(error?.message.contains(victim.name.rawValue) == true)
        }
    }

    @Test("neither the database nor its WAL holds a token, cookie, password or login in clear")
    func noPlaintextOnDisk() throws {
        try withTemporaryDirectory { dir in
            let path = databaseURL(dir).path
            let store = try CredentialStore.open(directory: dir, keyFile: dir.appendingPathComponent("key"))
            let a = Enrollment("plain-a")
            let b = Enrollment("plain-b", realm: "livesim")
            try a.create(in: store)
            try b.create(in: store)
            try store.commitRefresh(
                account: a.name, accessToken: token("AT-rotation-plain-\(UUID())", .hotmail),
                rotatedRefreshToken: Secret("RT-rotated-plain-\(UUID())"))
            let secrets =
                a.plaintexts + b.plaintexts
                + (try store.credentials(for: a.name).accessTokens.values.map(\.value.exposed))
                + [try store.credentials(for: a.name).refreshToken!.exposed]

            func check(_ when: Comment) {
                let files = rawFileBytes(path)
                for secret in secrets {
                    #expect(filesContaining(Array(secret.utf8), in: files).isEmpty, "\(when)")
                }
                // Account names (which often are logins) are sealed too.
                #expect(filesContaining(Array(a.name.rawValue.utf8), in: files).isEmpty, "\(when)")
                #expect(filesContaining(Array(b.name.rawValue.utf8), in: files).isEmpty, "\(when)")
                // Control: the scan does find what is stored in clear (the realm label).
                #expect(
                    !filesContaining(Array("realm-\(a.realm)".utf8), in: files).isEmpty
                        || !filesContaining(Array(a.realm.utf8), in: files).isEmpty, "\(when)")
            }
            // While open, the rows are in the WAL.
            #expect((fileSize(path + "-wal") ?? 0) > 0)
            #expect(filesContaining(Array(a.realm.utf8), in: rawFileBytes(path)).contains(path + "-wal"))
            check("while open")
            try store.close()
            check("after close")
        }
    }

    @Test("deleting an account leaves none of its sealed values in the database or its WAL")
    func deleteForgets() throws {
        try withTemporaryDirectory { dir in
            let path = databaseURL(dir).path
            let store = try CredentialStore.open(directory: dir, keyFile: dir.appendingPathComponent("key"))
            let a = Enrollment("delete-a")
            let b = Enrollment("delete-b")
            try a.create(in: store)
            try b.create(in: store)
            try store.commitRefresh(
                account: a.name, accessToken: token("AT-a-ssl", .ssl), rotatedRefreshToken: Secret("RT-a-rotated"))

            // Every stored byte string of each account, read by raw SQL.
            func storedValues(_ e: Enrollment) throws -> [[UInt8]] {
                let queue = try rawQueue(path)
                defer { try? queue.close() }
                return try queue.read { db in
                    let ids = try Int64.fetchAll(db, sql: "SELECT id FROM accounts ORDER BY id")
                    let id = try #require(e.name == a.name ? ids.first : ids.last)
                    let blobs =
                        try Data.fetchAll(db, sql: "SELECT login_sealed FROM accounts WHERE id = ?", arguments: [id])
                        + Data.fetchAll(db, sql: "SELECT login_mac FROM accounts WHERE id = ?", arguments: [id])
                        + Data.fetchAll(db, sql: "SELECT value FROM secrets WHERE account_id = ?", arguments: [id])
                        + Data.fetchAll(
                            db, sql: "SELECT value FROM access_tokens WHERE account_id = ?", arguments: [id])
                    return blobs.map { Array($0) }
                }
            }
            let valuesA = try storedValues(a)
            let valuesB = try storedValues(b)
            #expect(valuesA.count == 2 + 3 + 3)
            #expect(valuesA.allSatisfy { !filesContaining($0, in: rawFileBytes(path)).isEmpty })

            #expect(try store.deleteAccount(a.name))
            #expect(fileSize(path + "-wal") == 0)
            func check(_ when: Comment) {
                let files = rawFileBytes(path)
                for value in valuesA {
                    #expect(filesContaining(value, in: files).isEmpty, "\(when)")
                }
                #expect(filesContaining(Array(a.name.rawValue.utf8), in: files).isEmpty, "\(when)")
                // Control: the other account's values are still found.
                for value in valuesB {
                    #expect(!filesContaining(value, in: files).isEmpty, "\(when)")
                }
            }
            check("after delete")
            #expect(try store.account(named: a.name) == nil)
            expectBrokerError(.notFound) { _ = try store.credentials(for: a.name) }
            #expect(try store.credentials(for: b.name) == b.expectedCredentials)
            #expect(try store.deleteAccount(a.name) == false)
            try store.close()
            check("after close")

            // The login can be enrolled again.
            let reopened = try CredentialStore.open(directory: dir, keyFile: dir.appendingPathComponent("key"))
            try a.create(in: reopened)
            #expect(try reopened.credentials(for: a.name) == a.expectedCredentials)
            try reopened.close()
        }
    }

    @Test("a database error becomes a BrokerError without the SQL or its arguments")
    func databaseErrorsAreRedacted() throws {
        let secret = "RT-in-an-argument-\(UUID())"
        let dbError = DatabaseError(
            resultCode: .SQLITE_CONSTRAINT, message: "UNIQUE constraint failed: secrets.account_id",
            sql: "INSERT INTO secrets (value) VALUES (?)", arguments: [secret], publicStatementArguments: true)
        #expect(String(describing: dbError).contains(secret)) // GRDB's own description would leak it
        let mapped = storeError(dbError, "cannot store")
        #expect(mapped.code == .internalError)
        #expect(!mapped.description.contains(secret))
        #expect(!mapped.description.contains("INSERT"))
        #expect(mapped.message.contains("UNIQUE constraint failed"))

        let busy = storeError(DatabaseError(resultCode: .SQLITE_BUSY), "cannot store")
        #expect(busy.code == .temporarilyUnavailable)

        struct Decoding: Error, CustomStringConvertible {
            var value: String
            var description: String { value }
        }
        #expect(!storeError(Decoding(value: secret), "cannot read").description.contains(secret))
    }

    @Test("credentials print redacted, also through dump")
    func redaction() throws {
        let e = Enrollment("print")
        let credentials = e.expectedCredentials
        var dumped = ""
        dump(credentials, to: &dumped)
        for text in ["\(credentials)", String(reflecting: credentials), dumped] {
            for secret in [e.refreshToken, e.password, e.cookies] + e.tokens.map(\.value.exposed) {
                #expect(!text.contains(secret))
            }
        }
    }
}
