/// SkyLogin's framing and encoding: the CRC, varints, the "0x41" object lists and the records.

/// Reflected CRC-32 (polynomial 0xEDB88320) from 0xFFFFFFFF, without the final XOR: zlib's
/// crc32 XOR 0xFFFFFFFF.
package enum SkyLoginCRC {
    private static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    package static func crc32NoXor(_ data: some Sequence<UInt8>) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
        return crc
    }

    /// The two bytes after a record's ciphertext: the low 16 bits of the CRC (XOR the reply
    /// record's index), little-endian.
    package static func trailer(_ ciphertext: [UInt8], record: UInt16 = 0) -> [UInt8] {
        let low = UInt16(truncatingIfNeeded: crc32NoXor(ciphertext)) ^ record
        return [UInt8(low & 0xFF), UInt8(low >> 8)]
    }
}

/// Unsigned 32-bit little-endian base-128 integers.
package enum SkyLoginVarint {
    package static func encode(_ value: UInt32, into out: inout [UInt8]) {
        var v = value
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    package static func encode(_ value: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        encode(value, into: &out)
        return out
    }
}

/// A reader over untrusted bytes: every read is bounded, every failure a thrown error.
struct SkyLoginReader {
    let bytes: [UInt8]
    private(set) var position: Int

    init(_ bytes: [UInt8], position: Int = 0) {
        self.bytes = bytes
        self.position = position
    }

    var remaining: Int { bytes.count - position }
    var isAtEnd: Bool { position >= bytes.count }

    mutating func byte() throws(SkyLoginError) -> UInt8 {
        guard position < bytes.count else { throw .malformed("truncated") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ count: Int) throws(SkyLoginError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw .malformed("truncated") }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// At most five bytes, and no bits beyond 32.
    mutating func varint() throws(SkyLoginError) -> UInt32 {
        var value: UInt32 = 0
        for index in 0..<5 {
            let b = try byte()
            let group = UInt32(b & 0x7F)
            if index == 4 && (b & 0x80 != 0 || group > 0x0F) { throw .malformed("a varint exceeds 32 bits") }
            value |= group << (7 * UInt32(index))
            if b & 0x80 == 0 { return value }
        }
        throw .malformed("a varint exceeds 32 bits")
    }
}

/// One value of a 0x41 object. The family follows from the case.
package enum SkyLoginValue: Sendable, Equatable {
    /// Family 0: a varint.
    case number(UInt32)
    /// Family 1: eight bytes, big-endian.
    case qword(UInt64)
    /// Family 2: an IPv4 address (network order) and a port.
    case address(ip: [UInt8], port: UInt16)
    /// Family 3: bytes terminated by NUL (which they must not contain).
    case string([UInt8])
    /// Family 4: length-prefixed bytes.
    case blob([UInt8])
    /// Family 5: a nested list.
    case list([SkyLoginObject])
    /// Family 6: a count and that many varints.
    case intList([UInt32])

    package var family: UInt8 {
        switch self {
        case .number: 0
        case .qword: 1
        case .address: 2
        case .string: 3
        case .blob: 4
        case .list: 5
        case .intList: 6
        }
    }
}

/// A tagged value of a 0x41 list.
package struct SkyLoginObject: Sendable, Equatable {
    package var tag: UInt32
    package var value: SkyLoginValue

    package init(_ tag: UInt32, _ value: SkyLoginValue) {
        self.tag = tag
        self.value = value
    }
}

/// The plain ("0x41") object encoding: `41 ‖ varint(count) ‖ objects`, several lists back to back
/// in a body. The compressed 0x42 encoding is refused.
package enum SkyLoginObjects {
    package static let listMarker: UInt8 = 0x41
    /// Nested lists deeper than this are refused (no reply or credential uses any).
    package static let maxDepth = 8

    // MARK: Encoding

    package static func encode(_ lists: [[SkyLoginObject]]) throws(SkyLoginError) -> [UInt8] {
        var out: [UInt8] = []
        for list in lists { try encode(list: list, into: &out, depth: 0) }
        return out
    }

    package static func encode(list: [SkyLoginObject]) throws(SkyLoginError) -> [UInt8] {
        var out: [UInt8] = []
        try encode(list: list, into: &out, depth: 0)
        return out
    }

    private static func encode(list: [SkyLoginObject], into out: inout [UInt8], depth: Int) throws(SkyLoginError) {
        guard depth < maxDepth else { throw .invalidInput("object lists nest too deeply") }
        guard list.count <= Int(UInt32.max) else { throw .invalidInput("too many objects") }
        out.append(listMarker)
        SkyLoginVarint.encode(UInt32(list.count), into: &out)
        for object in list {
            out.append(object.value.family)
            SkyLoginVarint.encode(object.tag, into: &out)
            switch object.value {
            case .number(let n):
                SkyLoginVarint.encode(n, into: &out)
            case .qword(let q):
                withUnsafeBytes(of: q.bigEndian) { out += $0 }
            case .address(let ip, let port):
                guard ip.count == 4 else { throw .invalidInput("an IPv4 address is four bytes") }
                out += ip
                out += [UInt8(port >> 8), UInt8(port & 0xFF)]
            case .string(let s):
                guard !s.contains(0) else { throw .invalidInput("a string object cannot hold a NUL byte") }
                out += s
                out.append(0)
            case .blob(let b):
                guard b.count <= Int(UInt32.max) else { throw .invalidInput("a blob is too large") }
                SkyLoginVarint.encode(UInt32(b.count), into: &out)
                out += b
            case .list(let nested):
                try encode(list: nested, into: &out, depth: depth + 1)
            case .intList(let values):
                guard values.count <= Int(UInt32.max) else { throw .invalidInput("an int list is too large") }
                SkyLoginVarint.encode(UInt32(values.count), into: &out)
                for v in values { SkyLoginVarint.encode(v, into: &out) }
            }
        }
    }

    // MARK: Decoding

    /// Every list of a body, to its last byte. Strict: a truncated object, an unknown family, a
    /// count beyond the data or a 0x42 list is an error.
    package static func decodeLists(_ bytes: [UInt8]) throws(SkyLoginError) -> [[SkyLoginObject]] {
        var reader = SkyLoginReader(bytes)
        var lists: [[SkyLoginObject]] = []
        while !reader.isAtEnd { lists.append(try decodeList(&reader, depth: 0)) }
        return lists
    }

    /// Exactly one list, with nothing after it.
    package static func decodeList(_ bytes: [UInt8]) throws(SkyLoginError) -> [SkyLoginObject] {
        var reader = SkyLoginReader(bytes)
        let list = try decodeList(&reader, depth: 0)
        guard reader.isAtEnd else { throw .malformed("bytes after the object list") }
        return list
    }

    private static func decodeList(_ reader: inout SkyLoginReader, depth: Int) throws(SkyLoginError)
        -> [SkyLoginObject]
    {
        guard depth < maxDepth else { throw .malformed("object lists nest too deeply") }
        let marker = try reader.byte()
        guard marker == listMarker else {
            throw marker == 0x42
                ? .malformed("compressed (0x42) object lists are not supported") : .malformed("not an object list")
        }
        let count = try reader.varint()
        // Every object takes at least three bytes; a larger count cannot be honest.
        guard Int(count) <= reader.remaining / 3 else { throw .malformed("an object count exceeds the data") }
        var objects: [SkyLoginObject] = []
        for _ in 0..<count {
            let family = try reader.varint()
            let tag = try reader.varint()
            let value: SkyLoginValue
            switch family {
            case 0:
                value = .number(try reader.varint())
            case 1:
                value = .qword(try reader.take(8).reduce(0) { $0 << 8 | UInt64($1) })
            case 2:
                let ip = try reader.take(4)
                let port = try reader.take(2)
                value = .address(ip: ip, port: UInt16(port[0]) << 8 | UInt16(port[1]))
            case 3:
                var string: [UInt8] = []
                while true {
                    let b = try reader.byte()
                    if b == 0 { break }
                    string.append(b)
                }
                value = .string(string)
            case 4:
                let length = try reader.varint()
                guard Int(length) <= reader.remaining else { throw .malformed("a blob's length exceeds the data") }
                value = .blob(try reader.take(Int(length)))
            case 5:
                value = .list(try decodeList(&reader, depth: depth + 1))
            case 6:
                let n = try reader.varint()
                guard Int(n) <= reader.remaining else { throw .malformed("an int list's count exceeds the data") }
                var values: [UInt32] = []
                for _ in 0..<n { values.append(try reader.varint()) }
                value = .intList(values)
            default:
                throw .malformed("unknown object family \(family)")
            }
            objects.append(SkyLoginObject(tag, value))
        }
        return objects
    }
}

extension [SkyLoginObject] {
    /// The value of the only object with `tag`; nil when absent, an error when repeated.
    package func unique(_ tag: UInt32) throws(SkyLoginError) -> SkyLoginValue? {
        var found: SkyLoginValue?
        for object in self where object.tag == tag {
            guard found == nil else { throw .malformed("tag \(tag) appears twice") }
            found = object.value
        }
        return found
    }
}

/// The records: `magic(3) ‖ BE16 length ‖ body`.
package enum SkyLoginRecord {
    /// The client's "handshake" record magic (the hello and record 1).
    package static let handshakeMagic: [UInt8] = [0x16, 0x03, 0x01]
    /// The "application data" magic (the hello reply, record 2 and every reply).
    package static let dataMagic: [UInt8] = [0x17, 0x03, 0x01]
    /// What the client sends first; the server answers with a 5-byte header of `dataMagic`.
    package static let hello: [UInt8] = [0x16, 0x03, 0x01, 0x00, 0x00]
    package static let headerSize = 5

    package static func frame(_ magic: [UInt8], _ body: [UInt8]) throws(SkyLoginError) -> [UInt8] {
        guard body.count <= 0xFFFF else { throw .invalidInput("a record is limited to 65535 bytes") }
        return magic + [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    /// The body length a 5-byte header announces, when its magic is `magic`.
    package static func bodyLength(header: [UInt8], magic: [UInt8] = dataMagic) throws(SkyLoginError) -> Int {
        guard header.count == headerSize else { throw .malformed("a record header is 5 bytes") }
        guard Array(header.prefix(3)) == magic else { throw .malformed("unexpected record magic") }
        return Int(header[3]) << 8 | Int(header[4])
    }
}
