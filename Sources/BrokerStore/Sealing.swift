import BrokerCore
import Crypto
import Foundation

/// One master key of the store, with the subkeys derived from it.
///
/// The master key is never used directly: HKDF-SHA256 derives one key that seals secret columns
/// (AES-256-GCM) and one that computes the login lookup column (HMAC-SHA256). The key id is
/// the first 8 bytes of HMAC-SHA256(master, "tokenbroker key id v1"), so two keys can be told
/// apart (and named in an error) without revealing either.
struct StoreKey: Sendable {
    static let byteCount = 32

    let id: [UInt8]
    let sealKey: SymmetricKey
    let lookupKey: SymmetricKey
    let master: SymmetricKey

    init(master: SymmetricKey) throws {
        self.master = master
        guard master.bitCount == StoreKey.byteCount * 8 else {
            throw BrokerError(
                .internalError,
                "a store key must be exactly \(StoreKey.byteCount) bytes, not \(master.bitCount / 8)")
        }
        self.id = Array(
            HMAC<SHA256>.authenticationCode(for: Data("tokenbroker key id v1".utf8), using: master)
                .prefix(8))
        self.sealKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: master, info: Data("tokenbroker seal v1".utf8), outputByteCount: 32)
        self.lookupKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: master, info: Data("tokenbroker login lookup v1".utf8),
            outputByteCount: 32)
    }

    var idHex: String { hex(id) }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { byte in
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]], as: UTF8.self)
    }.joined()
}

/// What a sealed value is bound to. It becomes the additional authenticated data, so a sealed
/// value opens only in the row and column it was written for.
struct SealContext: Sendable, Hashable {
    /// The internal id of the account (`accounts.id`), 0 for store-wide values.
    var accountID: Int64
    /// A `SecretKind` raw value, or a store-wide purpose such as `key_check`.
    var purpose: String
    /// The scope's full name for access tokens, empty otherwise.
    var scope: String

    init(accountID: Int64, kind: SecretKind, scope: Scope? = nil) {
        self.accountID = accountID
        self.purpose = kind.rawValue
        self.scope = scope?.rawValue ?? ""
    }

    /// An RST site's ticket or BinarySecret: bound to the site's address.
    init(accountID: Int64, kind: SecretKind, site: String) {
        self.accountID = accountID
        self.purpose = kind.rawValue
        self.scope = site
    }

    init(storeWide purpose: String) {
        self.accountID = 0
        self.purpose = purpose
        self.scope = ""
    }

    /// A human description for error messages (no secret in it).
    var label: String {
        scope.isEmpty ? purpose : "\(purpose) (\(scope))"
    }
}

/// Seals and opens secret columns.
///
/// A sealed value is `version (1 byte, 0x01) || key id (8 bytes) || AES-GCM nonce (12) ||
/// ciphertext || tag (16)`. The additional authenticated data is a length-prefixed encoding of
/// a domain string, the 9-byte header, the account id, the purpose (secret kind) and the scope.
struct Sealer: Sendable {
    static let formatVersion: UInt8 = 1
    static let headerCount = 9

    /// The first key seals; every key can open what it sealed.
    let keys: [StoreKey]

    init(masterKeys: [SymmetricKey]) throws {
        guard !masterKeys.isEmpty else {
            throw BrokerError(.internalError, "no store key was given")
        }
        var keys: [StoreKey] = []
        for master in masterKeys {
            let key = try StoreKey(master: master)
            if !keys.contains(where: { $0.id == key.id }) { keys.append(key) }
        }
        self.keys = keys
    }

    var current: StoreKey { keys[0] }

    func seal(_ plaintext: String, _ context: SealContext) throws -> Data {
        let header = [Sealer.formatVersion] + current.id
        let box = try AES.GCM.seal(
            Data(plaintext.utf8), using: current.sealKey,
            authenticating: Sealer.aad(header: header, context))
        guard let combined = box.combined else {
            throw BrokerError(.internalError, "could not seal a \(context.label)")
        }
        return Data(header) + combined
    }

    /// The key id a sealed value names, or nil if it is not a sealed value of a known format.
    static func keyID(of sealed: Data) -> [UInt8]? {
        guard sealed.count > headerCount + 12 + 16, sealed.first == formatVersion else { return nil }
        return Array(sealed.dropFirst().prefix(8))
    }

    enum OpenFailure: Error {
        case malformed
        case unknownKey(String)
        case notAuthentic
    }

    func open(_ sealed: Data, _ context: SealContext) throws(OpenFailure) -> String {
        guard let keyID = Sealer.keyID(of: sealed) else { throw .malformed }
        guard let key = keys.first(where: { $0.id == keyID }) else { throw .unknownKey(hex(keyID)) }
        let header = Array(sealed.prefix(Sealer.headerCount))
        let plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(combined: sealed.dropFirst(Sealer.headerCount))
            plaintext = try AES.GCM.open(
                box, using: key.sealKey, authenticating: Sealer.aad(header: header, context))
        } catch {
            throw .notAuthentic
        }
        guard let text = String(validating: plaintext, as: UTF8.self) else { throw .notAuthentic }
        return text
    }

    private static func aad(header: [UInt8], _ context: SealContext) -> Data {
        var out = Data()
        func field(_ bytes: some Collection<UInt8>) {
            var count = UInt32(bytes.count).bigEndian
            withUnsafeBytes(of: &count) { out.append(contentsOf: $0) }
            out.append(contentsOf: bytes)
        }
        field(Array("tokenbroker sealed column v1".utf8))
        field(header)
        var id = context.accountID.bigEndian
        field(withUnsafeBytes(of: &id) { Array($0) })
        field(Array(context.purpose.utf8))
        field(Array(context.scope.utf8))
        return out
    }

    /// The lookup values of a login in a realm under every key (current key first): HMAC-SHA256
    /// over the lowercased login and the realm, exactly as given. Logins compare
    /// case-insensitively; realm names are configuration labels and compare exactly.
    func loginMACs(login: String, realm: String) -> [Data] {
        keys.map { Sealer.loginMAC(login: login, realm: realm, key: $0) }
    }

    /// The lookup values of an account name under every key (current key first), as hex: the
    /// `accounts.name` column holds this, so the file does not show names (often logins).
    func nameMACs(_ name: String) -> [String] {
        keys.map { key in
            hex(HMAC<SHA256>.authenticationCode(for: Data(("account name\u{0}" + name).utf8), using: key.lookupKey))
        }
    }

    func currentLoginMAC(login: String, realm: String) -> Data {
        Sealer.loginMAC(login: login, realm: realm, key: current)
    }

    private static func loginMAC(login: String, realm: String, key: StoreKey) -> Data {
        var message = Data()
        for part in [login.lowercased(), realm] {
            var count = UInt32(part.utf8.count).bigEndian
            withUnsafeBytes(of: &count) { message.append(contentsOf: $0) }
            message.append(contentsOf: Array(part.utf8))
        }
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: key.lookupKey))
    }
}
