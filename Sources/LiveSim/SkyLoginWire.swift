/// SkyLogin's "0x41" object lists, livesim's own reader and writer (the broker has its own).
///
/// A list is `41 ‖ varint(count) ‖ object*`; an object is `varint(family) ‖ varint(tag) ‖ value`.
/// The reader is bounded everywhere: it never trusts a length or a count beyond the bytes present,
/// and nesting is limited.
enum SkyValue: Equatable, Sendable {
    /// Family 0: a varint.
    case number(UInt32)
    /// Family 1: 8 bytes, big-endian.
    case qword(UInt64)
    /// Family 2: IPv4 ‖ BE16 port (6 bytes).
    case address([UInt8])
    /// Family 3: bytes up to a NUL.
    case string([UInt8])
    /// Family 4: varint(length) ‖ bytes.
    case blob([UInt8])
    /// Family 5: a nested list.
    case list([SkyObject])
    /// Family 6: varint(count) ‖ count varints.
    case intList([UInt32])
}

struct SkyObject: Equatable, Sendable {
    var tag: UInt32
    var value: SkyValue

    init(_ tag: UInt32, _ value: SkyValue) {
        self.tag = tag
        self.value = value
    }
}

enum SkyObjects {
    static let listMarker: UInt8 = 0x41
    static let maxDepth = 4

    // MARK: Writing

    static func varint(_ value: UInt32) -> [UInt8] {
        var value = value
        var out: [UInt8] = []
        while value >= 0x80 {
            out.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
        return out
    }

    static func encode(list: [SkyObject]) -> [UInt8] {
        var out = [listMarker] + varint(UInt32(list.count))
        for object in list { out += encode(object) }
        return out
    }

    static func encode(lists: [[SkyObject]]) -> [UInt8] { lists.flatMap { encode(list: $0) } }

    private static func encode(_ object: SkyObject) -> [UInt8] {
        switch object.value {
        case .number(let n): return [0] + varint(object.tag) + varint(n)
        case .qword(let q): return [1] + varint(object.tag) + (0..<8).map { UInt8((q >> (56 - 8 * $0)) & 0xFF) }
        case .address(let a): return [2] + varint(object.tag) + a
        case .string(let s): return [3] + varint(object.tag) + s + [0]
        case .blob(let b): return [4] + varint(object.tag) + varint(UInt32(b.count)) + b
        case .list(let l): return [5] + varint(object.tag) + encode(list: l)
        case .intList(let values):
            return [6] + varint(object.tag) + varint(UInt32(values.count)) + values.flatMap { varint($0) }
        }
    }

    // MARK: Reading

    struct Malformed: Error {
        var reason: String
    }

    /// Reads lists back to back until the bytes end.
    static func decodeLists(_ bytes: [UInt8]) throws(Malformed) -> [[SkyObject]] {
        var reader = Reader(bytes: bytes)
        var lists: [[SkyObject]] = []
        while !reader.atEnd {
            guard lists.count < 16 else { throw Malformed(reason: "too many lists") }
            lists.append(try reader.list(depth: 0))
        }
        return lists
    }

    struct Reader {
        let bytes: [UInt8]
        var index = 0

        var atEnd: Bool { index >= bytes.count }
        var remaining: Int { bytes.count - index }

        mutating func byte() throws(Malformed) -> UInt8 {
            guard index < bytes.count else { throw Malformed(reason: "truncated") }
            defer { index += 1 }
            return bytes[index]
        }

        mutating func take(_ count: Int) throws(Malformed) -> [UInt8] {
            guard count >= 0, count <= remaining else { throw Malformed(reason: "length beyond the data") }
            defer { index += count }
            return Array(bytes[index..<(index + count)])
        }

        mutating func varint() throws(Malformed) -> UInt32 {
            var value: UInt32 = 0
            for shift in stride(from: 0, through: 28, by: 7) {
                let b = try byte()
                let part = UInt32(b & 0x7F)
                guard shift < 28 || part <= 0x0F else { throw Malformed(reason: "varint over 32 bits") }
                value |= part << UInt32(shift)
                if b & 0x80 == 0 { return value }
            }
            throw Malformed(reason: "varint over 5 bytes")
        }

        mutating func list(depth: Int) throws(Malformed) -> [SkyObject] {
            let marker = try byte()
            guard marker == listMarker else {
                throw Malformed(
                    reason: marker == 0x42 ? "0x42 (compressed) lists are not supported" : "not a 0x41 list")
            }
            let count = Int(try varint())
            // Every object takes at least three bytes.
            guard count <= remaining / 3 else { throw Malformed(reason: "object count beyond the data") }
            var objects: [SkyObject] = []
            objects.reserveCapacity(count)
            for _ in 0..<count { objects.append(try object(depth: depth)) }
            return objects
        }

        mutating func object(depth: Int) throws(Malformed) -> SkyObject {
            let family = try varint()
            let tag = try varint()
            switch family {
            case 0: return SkyObject(tag, .number(try varint()))
            case 1: return SkyObject(tag, .qword(try take(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
            case 2: return SkyObject(tag, .address(try take(6)))
            case 3:
                guard let end = bytes[index...].firstIndex(of: 0) else {
                    throw Malformed(reason: "unterminated string")
                }
                let value = Array(bytes[index..<end])
                index = end + 1
                return SkyObject(tag, .string(value))
            case 4: return SkyObject(tag, .blob(try take(Int(try varint()))))
            case 5:
                guard depth < maxDepth else { throw Malformed(reason: "lists nested too deep") }
                return SkyObject(tag, .list(try list(depth: depth + 1)))
            case 6:
                let count = Int(try varint())
                guard count <= remaining else { throw Malformed(reason: "int list count beyond the data") }
                var values: [UInt32] = []
                for _ in 0..<count { values.append(try varint()) }
                return SkyObject(tag, .intList(values))
            default:
                throw Malformed(reason: "unknown object family \(family)")
            }
        }
    }
}

/// The record layer: `magic(3) ‖ BE16 length ‖ body`.
enum SkyRecord {
    static let handshake: [UInt8] = [0x16, 0x03, 0x01]
    static let data: [UInt8] = [0x17, 0x03, 0x01]
    static let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x00]
    static let helloReply: [UInt8] = [0x17, 0x03, 0x01, 0x00, 0x00]
    /// SkyLogin reads a reply record into a 4096-byte buffer.
    static let maxReply = 4096
    /// Answer codes: 4200 is success; any other is a refusal. The others are livesim's choice.
    static let loginOK: UInt32 = 4200
    static let badCredentials: UInt32 = 4201
    static let malformedRequest: UInt32 = 4202

    static func header(_ magic: [UInt8], length: Int) -> [UInt8] {
        magic + [UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
    }

    /// Record 1's body: the session key, raw-RSA-decrypted with the session key pair (blob tag 0x08).
    static func openRecord1(body: [UInt8], sessionKey: SkyRSAKey) throws(SkyObjects.Malformed) -> [UInt8] {
        let objects = try SkyObjects.decodeLists(body).flatMap { $0 }
        guard case .blob(let encrypted)? = objects.first(where: { $0.tag == 0x08 })?.value else {
            throw SkyObjects.Malformed(reason: "record 1 has no session-key blob (tag 0x08)")
        }
        guard encrypted.count == sessionKey.size, let sk = sessionKey.privateOperation(encrypted) else {
            throw SkyObjects.Malformed(reason: "the session-key blob does not open with the session key")
        }
        guard sk.first == 0x01 else { throw SkyObjects.Malformed(reason: "the session key does not start with 01") }
        return sk
    }

    /// Record 2's body (ciphertext ‖ LE16 CRC): checks the CRC and decrypts with counter 0.
    static func openRecord2(body: [UInt8], aesKey: [UInt8]) throws(SkyObjects.Malformed) -> [UInt8] {
        guard body.count > 2 else { throw SkyObjects.Malformed(reason: "record 2 is empty") }
        let ciphertext = Array(body.dropLast(2))
        guard SkyCipher.crc16(ciphertext) == Array(body.suffix(2)) else {
            throw SkyObjects.Malformed(reason: "record 2's CRC does not match")
        }
        guard let plain = SkyCipher.ctr(key: aesKey, counter: SkyCipher.requestCounter, ciphertext) else {
            throw SkyObjects.Malformed(reason: "AES failed")
        }
        return plain
    }

    /// The plaintext of a reply: list A {0x01: code}, then list B {0x24: credentials}, or an
    /// empty list B on failure.
    static func replyPlain(code: UInt32, credentials: [UInt8]?) -> [UInt8] {
        SkyObjects.encode(lists: [
            [SkyObject(0x01, .number(code))], credentials.map { [SkyObject(0x24, .blob($0))] } ?? [],
        ])
    }

    /// A whole reply record: `17 03 01 ‖ BE16(len + 2) ‖ AES-CTR(plain) ‖ LE16(crc16 ^ p)`.
    static func sealReply(_ plain: [UInt8], aesKey: [UInt8], record: Int = 0) -> [UInt8]? {
        guard let ciphertext = SkyCipher.ctr(key: aesKey, counter: SkyCipher.replyCounter(record: record), plain),
            ciphertext.count + 2 <= 0xFFFF
        else { return nil }
        return header(data, length: ciphertext.count + 2) + ciphertext + SkyCipher.crc16(ciphertext, record: record)
    }
}

/// What a login request asks for, read from record 2's lists.
struct SkyLoginRequest: Equatable {
    enum Method: Equatable {
        /// Tags 0x04 (name) and 0x05 (16-byte hash).
        case password(name: String, hash: [UInt8])
        /// Tag 0x3D: a login.skype.com access token.
        case oauth(token: String)
    }

    var method: Method
    /// Tag 0x21: the client's 1024-bit modulus, 128 bytes.
    var modulus: [UInt8]
    var code: UInt32?
    var version: String?

    static let maxName = 128
    static let maxToken = 16 * 1024

    /// Picks the method from the tags present (0x3D before 0x04/0x05), not from the request code.
    static func parse(_ plain: [UInt8]) throws(SkyObjects.Malformed) -> SkyLoginRequest {
        let objects = try SkyObjects.decodeLists(plain).flatMap { $0 }
        func value(_ tag: UInt32) -> SkyValue? { objects.first { $0.tag == tag }?.value }
        func text(_ tag: UInt32) -> String? {
            guard case .string(let bytes)? = value(tag) else { return nil }
            return String(validating: bytes, as: UTF8.self)
        }
        guard case .blob(let modulus)? = value(0x21) else {
            throw SkyObjects.Malformed(reason: "no client modulus (tag 0x21)")
        }
        guard modulus.count == 128, modulus[0] & 0x80 != 0, modulus[127] & 1 == 1 else {
            throw SkyObjects.Malformed(reason: "the client modulus is not a 1024-bit odd number of 128 bytes")
        }
        var code: UInt32?
        if case .number(let n)? = value(0x00) { code = n }
        let method: Method
        if value(0x3D) != nil {
            guard let token = text(0x3D), !token.isEmpty, token.utf8.count <= maxToken else {
                throw SkyObjects.Malformed(reason: "tag 0x3D is not a token string")
            }
            method = .oauth(token: token)
        } else if value(0x04) != nil || value(0x05) != nil {
            guard let name = text(0x04), !name.isEmpty, name.utf8.count <= maxName else {
                throw SkyObjects.Malformed(reason: "tag 0x04 is not a Skype name")
            }
            guard case .blob(let hash)? = value(0x05), hash.count == 16 else {
                throw SkyObjects.Malformed(reason: "tag 0x05 is not a 16-byte hash")
            }
            method = .password(name: name, hash: hash)
        } else {
            throw SkyObjects.Malformed(reason: "neither a password (0x04/0x05) nor an OAuth (0x3D) request")
        }
        return SkyLoginRequest(method: method, modulus: modulus, code: code, version: text(0x0D))
    }
}
