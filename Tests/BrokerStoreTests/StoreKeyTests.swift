import BrokerCore
import Crypto
import Foundation
import Testing

@testable import BrokerStore

@Suite("Keys: file modes, systemd credentials and rekey")
struct StoreKeyTests {
    @Test("a key file others can read or write is refused")
    func keyFileMode() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            let store = try CredentialStore.open(directory: dir.appendingPathComponent("state"), keyFile: keyFile)
            try store.close()
            for mode in [0o640, 0o604, 0o660, 0o666] as [mode_t] {
                chmod(keyFile.path, mode)
                #expect(throws: BrokerError.self) {
                    try CredentialStore.open(directory: dir.appendingPathComponent("state"), keyFile: keyFile)
                }
            }
            chmod(keyFile.path, 0o400)
            try CredentialStore.open(directory: dir.appendingPathComponent("state"), keyFile: keyFile).close()
        }
    }

    @Test("the key comes from the systemd credential directory when it holds tokenbroker.key")
    func credentialDirectory() throws {
        try withTemporaryDirectory { dir in
            let credentials = dir.appendingPathComponent("credentials")
            try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
            let key = SymmetricKey(size: .bits256)
            let credential = credentials.appendingPathComponent(CredentialStore.credentialName)
            try key.withUnsafeBytes { try Data($0).write(to: credential) }
            chmod(credential.path, 0o400)
            let keyFile = dir.appendingPathComponent("key")
            let state = dir.appendingPathComponent("state")
            let a = Enrollment("cred")
            let store = try CredentialStore.open(
                directory: state, keyFile: keyFile, credentialsDirectory: credentials.path)
            try a.create(in: store)
            try store.close()
            // No key file was generated, and the database opens only with the credential's key.
            #expect(!FileManager.default.fileExists(atPath: keyFile.path))
            let reopened = try CredentialStore(
                databasePath: state.appendingPathComponent(CredentialStore.databaseFileName).path, keys: [key])
            #expect(try reopened.credentials(for: a.name).password?.exposed == a.password)
            try reopened.close()
            #expect(throws: BrokerError.self) {
                try CredentialStore.open(directory: state, keyFile: keyFile)
            }
        }
    }

    @Test("rekey re-seals every row under the new key, replaces the key file, and the old key no longer opens it")
    func rekey() throws {
        try withTemporaryDirectory { dir in
            let keyFile = dir.appendingPathComponent("key")
            let state = dir.appendingPathComponent("state")
            let store = try CredentialStore.open(directory: state, keyFile: keyFile)
            let oldKey = try KeyFile.read(keyFile)
            let a = Enrollment("rekey-a")
            let b = Enrollment("rekey-b")
            try a.create(in: store)
            try b.create(in: store)
            let newBytes = (0..<32).map { _ in UInt8.random(in: 0...255) }
            let result = try store.rekey(to: newBytes)
            #expect(result.resealed >= 10)
            #expect(result.keyFileReplaced == keyFile.path)
            #expect(result.keyID == store.currentKeyID)
            // Reads and writes go on in the same store.
            #expect(try store.credentials(for: a.name).refreshToken?.exposed == a.refreshToken)
            try store.setState(.needsReauth, reason: "test", for: b.name)
            #expect(try store.accountName(login: a.login, realm: a.realm) == a.name)
            try store.close()

            #expect(Array(try Data(contentsOf: keyFile)) == newBytes)
            var info = stat()
            stat(keyFile.path, &info)
            #expect(info.st_mode & 0o777 == 0o600)
            let reopened = try CredentialStore.open(directory: state, keyFile: keyFile)
            #expect(try reopened.credentials(for: a.name).password?.exposed == a.password)
            #expect(try reopened.account(named: b.name)?.state == .needsReauth)
            #expect(try reopened.accountName(login: b.login, realm: b.realm) == b.name)
            try reopened.close()
            #expect(throws: BrokerError.self) {
                try CredentialStore(
                    databasePath: state.appendingPathComponent(CredentialStore.databaseFileName).path, keys: [oldKey])
            }
        }
    }
}
