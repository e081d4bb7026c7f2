import CSecretSlab

#if canImport(Glibc)
    import Glibc
#endif

/// A credential value: a token, cookie, ticket or password.
///
/// Its description is redacted so that a secret cannot reach a log line, an error message or a
/// crash report by string interpolation. Its bytes live outside malloc's heap, in the secret slab
/// (`CSecretSlab`): slots of the same size are reused as tokens are replaced, zeroed when freed,
/// and left out of core dumps.
package struct Secret: Sendable, Hashable, Codable, CustomStringConvertible, CustomDebugStringConvertible {
    private let storage: SecretBytes

    package init(_ value: String) {
        var value = value
        storage = value.withUTF8 { SecretBytes(copying: UnsafeRawBufferPointer($0)) }
    }

    /// A secret made of bytes that already hold one (an answer with a token in it), copied into
    /// the slab without passing through a String.
    package init(copying bytes: UnsafeRawBufferPointer) {
        storage = SecretBytes(copying: bytes)
    }

    /// The raw value, as a new String. Read it only where it leaves the process on purpose; the
    /// hot path uses `withUTF8` and makes no String.
    package var exposed: String { storage.withBytes { String(decoding: $0, as: UTF8.self) } }

    /// The value's UTF-8 bytes, without a copy.
    package func withUTF8<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try storage.withBytes(body)
    }

    /// The length of the value in UTF-8 bytes.
    package var utf8Count: Int { storage.count }

    package var description: String { "<redacted \(utf8Count) bytes>" }
    package var debugDescription: String { description }

    package static func == (lhs: Secret, rhs: Secret) -> Bool {
        lhs.storage === rhs.storage
            || lhs.withUTF8 { a in
                rhs.withUTF8 { b in
                    a.count == b.count && (a.isEmpty || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
                }
            }
    }

    package func hash(into hasher: inout Hasher) {
        withUTF8 { hasher.combine(bytes: $0) }
    }

    package init(from decoder: any Decoder) throws {
        self.init(try decoder.singleValueContainer().decode(String.self))
    }

    package func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(exposed)
    }
}

/// A secret's bytes in a slab slot, freed (and zeroed) with the last `Secret` that shares them.
/// Immutable once made.
///
/// One word: the slot's address in the low 48 bits (where user-space addresses fit on 64-bit
/// Linux) and the length in the top 16. A secret of 65,535 bytes or more keeps its length in the
/// eight bytes before its first byte instead, and the top bits say so. The object is then 24
/// bytes, which malloc serves from 32-byte chunks; with the length as a field of its own it
/// would take 48-byte ones, and every account holds six to eight secrets.
private final class SecretBytes: @unchecked Sendable {
    private let word: UInt

    private static let addressBits: UInt = 48
    private static let addressMask: UInt = (1 << addressBits) - 1
    /// In the top bits: the length is in the header before the bytes.
    private static let longMarker: UInt = 0xFFFF

    init(copying bytes: UnsafeRawBufferPointer) {
        let count = bytes.count
        let long = UInt(count) >= Self.longMarker
        let slot: UnsafeMutableRawPointer = tb_secret_alloc(long ? count + 8 : count)
        let base = long ? slot + 8 : slot
        if long { slot.storeBytes(of: UInt64(count), as: UInt64.self) }
        if let source = bytes.baseAddress, !bytes.isEmpty { base.copyMemory(from: source, byteCount: count) }
        let address = UInt(bitPattern: base)
        precondition(address & ~Self.addressMask == 0, "a secret slot's address does not fit in 48 bits")
        word = address | ((long ? Self.longMarker : UInt(count)) << Self.addressBits)
    }

    private var base: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: word & Self.addressMask)! }

    var count: Int {
        let short = word >> Self.addressBits
        guard short == Self.longMarker else { return Int(short) }
        return Int((base - 8).load(as: UInt64.self))
    }

    deinit {
        let count = count
        if UInt(count) >= Self.longMarker {
            tb_secret_free(base - 8, count + 8)
        } else {
            tb_secret_free(base, count)
        }
    }

    func withBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }
}

/// What the secret slab holds: the secrets' own bytes, the slots they take, and all it has mapped.
package struct SecretMemory: Sendable, Equatable {
    package var live: UInt64
    package var payload: UInt64
    package var slots: UInt64
    package var mapped: UInt64

    package static func current() -> SecretMemory {
        var stats = tb_secret_stats()
        tb_secret_usage(&stats)
        return SecretMemory(live: stats.live, payload: stats.payload, slots: stats.slots, mapped: stats.mapped)
    }
}

/// The kinds of secret the store seals. The kind is part of the additional authenticated data,
/// so a sealed value cannot be moved to another column.
package enum SecretKind: String, Sendable, CaseIterable, Codable {
    case refreshToken = "refresh_token"
    case accessToken = "access_token"
    case password
    case cookies
    case login
    /// The daemon's name of the account, which often is the login.
    case accountName = "account_name"
    /// An RST site's compact ticket (`site_tickets.value`).
    case siteTicket = "site_ticket"
    /// The BinarySecret that came with an RST site's ticket (`site_tickets.proof_key`).
    case proofKey = "proof_key"
    /// A Skype name's MD5(name ‖ "\nskyper\n" ‖ password), hex (`skylogin.login_hash`).
    case loginHash = "login_hash"
    /// The account's SkyLogin RSA private key (`skylogin.client_key`).
    case clientKey = "client_key"
    /// SkyLogin signed credentials (`skylogin.credentials`).
    case skyloginCredentials = "skylogin_credentials"
    /// The Skype name SkyLogin credentials bind (`skylogin.skype_name`): it tells who the account
    /// is, so it is sealed like the login.
    case skypeName = "skype_name"
    /// A skypetoken (`derived_credentials`, kind `skypetoken`).
    case skypetoken
    /// A UIC (`derived_credentials`, kind `uic`).
    case uic
}
