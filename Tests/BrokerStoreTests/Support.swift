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

/// A fresh directory under the system temporary directory, removed afterwards.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("brokerstore-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

func withTemporaryDirectory<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("brokerstore-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

func name(_ raw: String) -> AccountName { AccountName(rawValue: raw)! }

let t0 = Date(timeIntervalSince1970: 1_760_000_000)

func token(_ value: String, _ scope: Scope, obtained: Date = t0, lifetime: TimeInterval = 86_400) -> AccessToken {
    AccessToken(value: Secret(value), scope: scope, obtainedAt: obtained, expiresAt: obtained + lifetime)
}

func randomKey() -> SymmetricKey { SymmetricKey(size: .bits256) }

func keyBytes(_ key: SymmetricKey) -> [UInt8] { key.withUnsafeBytes { Array($0) } }

func databaseURL(_ directory: URL) -> URL {
    directory.appendingPathComponent(CredentialStore.databaseFileName)
}

/// The permission bits of a file.
func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o777
}

func fileSize(_ path: String) -> Int? {
    (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
}

/// The bytes of the database, its -wal and its -shm file (those that exist).
func rawFileBytes(_ databasePath: String) -> [String: [UInt8]] {
    var out: [String: [UInt8]] = [:]
    for path in [databasePath, databasePath + "-wal", databasePath + "-shm"] {
        if let data = FileManager.default.contents(atPath: path) { out[path] = Array(data) }
    }
    return out
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    let first = needle[0]
    var i = 0
    let last = haystack.count - needle.count
    while i <= last {
        if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return true }
        i += 1
    }
    return false
}

/// Which of the files (database, -wal, -shm) hold `needle`.
func filesContaining(_ needle: [UInt8], in files: [String: [UInt8]]) -> [String] {
    files.filter { contains($0.value, needle) }.map(\.key).sorted()
}

/// A second, independent connection to the database file, for raw SQL.
func rawQueue(_ databasePath: String) throws -> DatabaseQueue {
    var config = Configuration()
    config.busyMode = .timeout(10)
    return try DatabaseQueue(path: databasePath, configuration: config)
}

/// Expects `body` to throw a `BrokerError` with `code`, and returns it.
@discardableResult
func expectBrokerError(
    _ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> BrokerError? {
    do {
        try body()
        Issue.record("expected BrokerError(\(code.rawValue)), nothing was thrown", sourceLocation: sourceLocation)
        return nil
    } catch let error as BrokerError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected BrokerError(\(code.rawValue)), got \(type(of: error))", sourceLocation: sourceLocation)
        return nil
    }
}

/// A full enrollment with distinctive secret values.
struct Enrollment {
    var name: AccountName
    var realm = "live"
    var login: String
    var refreshToken: String
    var password: String
    var cookies: String
    var tokens: [AccessToken]

    init(_ label: String, realm: String = "live") {
        let tag = UUID().uuidString.prefix(8)
        self.name = AccountName(rawValue: "label-\(label)-\(tag)")!
        self.realm = realm
        self.login = "\(label).Login-\(tag)@Example.COM"
        self.refreshToken = "RT-plain-\(label)-\(UUID().uuidString)"
        self.password = "PW-plain-\(label)-\(UUID().uuidString)"
        self.cookies = "MSPAuth=CK-plain-\(label)-\(UUID().uuidString)"
        self.tokens = [
            token("AT-skype-\(label)-\(UUID().uuidString)", .skype),
            token("AT-contacts-\(label)-\(UUID().uuidString)", .contacts, lifetime: 3_600),
        ]
    }

    func create(in store: CredentialStore) throws {
        try store.createAccount(
            name: name, realm: realm, login: login, refreshToken: Secret(refreshToken), accessTokens: tokens,
            password: Secret(password), cookies: Secret(cookies))
    }

    var plaintexts: [String] {
        [login, login.lowercased(), refreshToken, password, cookies] + tokens.map(\.value.exposed)
    }

    var expectedCredentials: StoredCredentials {
        StoredCredentials(
            refreshToken: Secret(refreshToken),
            accessTokens: Dictionary(uniqueKeysWithValues: tokens.map { ($0.scope, $0) }),
            password: Secret(password), cookies: Secret(cookies))
    }
}
