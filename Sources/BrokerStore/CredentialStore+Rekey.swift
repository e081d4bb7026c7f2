import BrokerCore
import Crypto
import Foundation
import GRDB
import Locks

/// Re-sealing the whole store under a new key.
extension CredentialStore {
    /// What a rekey did.
    package struct RekeyResult: Sendable {
        /// The id of the new key (16 hex digits).
        package var keyID: String
        /// How many sealed values were re-sealed.
        package var resealed: Int
        /// The key file now holding the new key, when the store could replace it; nil when the
        /// key came from elsewhere (a systemd credential), which the operator must replace.
        package var keyFileReplaced: String?
    }

    /// Re-seals every sealed value and lookup column under a new 32-byte key, in one
    /// transaction, while reads and writes go on: from the start, values open under either key.
    /// Then, when the key came from a key file, the file is replaced (atomically, mode 0600).
    package func rekey(to keyBytes: [UInt8]) throws -> RekeyResult {
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
                for row in try Row.fetchAll(db, sql: "SELECT account_id, kind, value FROM derived_credentials") {
                    let id: Int64 = row["account_id"]
                    let kindName: String = row["kind"]
                    guard let kind = SecretKind(rawValue: kindName) else { continue }
                    let context = SealContext(accountID: id, kind: kind)
                    let plain = try self.open(row["value"], context, account: "row \(id)")
                    try db.execute(
                        sql: "UPDATE derived_credentials SET value = ? WHERE account_id = ? AND kind = ?",
                        arguments: [try next.seal(plain, context), id, kindName])
                    count += 1
                }
                for row in try Row.fetchAll(db, sql: "SELECT account_id, site, value, proof_key FROM site_tickets") {
                    let id: Int64 = row["account_id"]
                    let site: String = row["site"]
                    let ticketContext = SealContext(accountID: id, kind: .siteTicket, site: site)
                    let ticket = try self.open(row["value"], ticketContext, account: "row \(id)")
                    var proofKey: Data?
                    if let sealed = row["proof_key"] as Data? {
                        let keyContext = SealContext(accountID: id, kind: .proofKey, site: site)
                        proofKey = try next.seal(try self.open(sealed, keyContext, account: "row \(id)"), keyContext)
                        count += 1
                    }
                    try db.execute(
                        sql: "UPDATE site_tickets SET value = ?, proof_key = ? WHERE account_id = ? AND site = ?",
                        arguments: [try next.seal(ticket, ticketContext), proofKey, id, site])
                    count += 1
                }
                for row in try Row.fetchAll(
                    db, sql: "SELECT account_id, client_key, login_hash, credentials, skype_name FROM skylogin")
                {
                    let id: Int64 = row["account_id"]
                    var values: [Data?] = []
                    for (column, kind) in [
                        ("client_key", SecretKind.clientKey), ("login_hash", .loginHash),
                        ("credentials", .skyloginCredentials), ("skype_name", .skypeName),
                    ] {
                        guard let sealed = row[column] as Data? else {
                            values.append(nil)
                            continue
                        }
                        let context = SealContext(accountID: id, kind: kind)
                        values.append(try next.seal(try self.open(sealed, context, account: "row \(id)"), context))
                        count += 1
                    }
                    try db.execute(
                        sql: """
                            UPDATE skylogin SET client_key = ?, login_hash = ?, credentials = ?, skype_name = ?
                            WHERE account_id = ?
                            """,
                        arguments: [values[0], values[1], values[2], values[3], id])
                }
                for row in try Row.fetchAll(db, sql: "SELECT id, realm, login_sealed, name_sealed FROM accounts") {
                    let id: Int64 = row["id"]
                    let realm: String = row["realm"]
                    let login = try self.open(
                        row["login_sealed"], SealContext(accountID: id, kind: .login), account: "row \(id)")
                    let name = try self.open(
                        row["name_sealed"], SealContext(accountID: id, kind: .accountName), account: "row \(id)")
                    try db.execute(
                        sql:
                            "UPDATE accounts SET login_sealed = ?, login_mac = ?, name_sealed = ?, name = ? WHERE id = ?",
                        arguments: [
                            try next.seal(login, SealContext(accountID: id, kind: .login)),
                            next.currentLoginMAC(login: login, realm: realm),
                            try next.seal(name, SealContext(accountID: id, kind: .accountName)), next.nameMACs(name)[0],
                            id,
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
}
