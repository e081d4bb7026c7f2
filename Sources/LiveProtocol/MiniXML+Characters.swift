/// What XML 1.0 (fifth edition) allows where: characters, name characters, whitespace.
extension MiniXMLParser {
    /// XML's end-of-line handling, before anything else: CR LF and a lone CR become LF.
    static func normalizingLineEnds(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.contains(0x0D) else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var k = 0
        while k < bytes.count {
            if bytes[k] == 0x0D {
                out.append(0x0A)
                if k + 1 < bytes.count, bytes[k + 1] == 0x0A { k += 1 }
            } else {
                out.append(bytes[k])
            }
            k += 1
        }
        return out
    }

    /// Every character must be one XML allows: no C0 control but tab and line feed, no U+FFFE or
    /// U+FFFF. (The text is a Swift string, so its UTF-8 is valid and has no surrogates.)
    func checkCharacters() throws(MiniXML.SyntaxError) {
        for (k, c) in b.enumerated() {
            if c < 0x20, c != 0x09, c != 0x0A {
                throw MiniXML.SyntaxError(reason: "character U+\(hex(c)) is not allowed in XML", offset: k)
            }
            if c == 0xEF, k + 2 < b.count, b[k + 1] == 0xBF, b[k + 2] == 0xBE || b[k + 2] == 0xBF {
                throw MiniXML.SyntaxError(reason: "character U+FFFE or U+FFFF is not allowed in XML", offset: k)
            }
        }
    }

    private func hex(_ c: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(utf8Bytes: [0x30, 0x30, digits[Int(c >> 4)], digits[Int(c & 0x0F)]])
    }

    /// The end of the Name starting at `start`, or nil when none starts there.
    func scanName(from start: Int) -> Int? {
        guard start < b.count, let (first, length) = scalar(at: start), Self.isNameStart(first) else { return nil }
        var k = start + length
        while k < b.count, let (value, length) = scalar(at: k), Self.isNameChar(value) { k += length }
        return k
    }

    /// The scalar value of the UTF-8 sequence at `k`, and its length.
    private func scalar(at k: Int) -> (UInt32, Int)? {
        let c = UInt32(b[k])
        func continuation(_ n: Int) -> UInt32 { UInt32(b[k + n]) & 0x3F }
        switch c {
        case 0..<0x80: return (c, 1)
        case 0xC0..<0xE0 where k + 1 < b.count: return ((c & 0x1F) << 6 | continuation(1), 2)
        case 0xE0..<0xF0 where k + 2 < b.count:
            return ((c & 0x0F) << 12 | continuation(1) << 6 | continuation(2), 3)
        case 0xF0..<0xF8 where k + 3 < b.count:
            return ((c & 0x07) << 18 | continuation(1) << 12 | continuation(2) << 6 | continuation(3), 4)
        default: return nil
        }
    }

    static func isNameStart(_ v: UInt32) -> Bool {
        switch v {
        case 0x3A, 0x41...0x5A, 0x5F, 0x61...0x7A, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x2FF, 0x370...0x37D,
            0x37F...0x1FFF, 0x200C...0x200D, 0x2070...0x218F, 0x2C00...0x2FEF, 0x3001...0xD7FF, 0xF900...0xFDCF,
            0xFDF0...0xFFFD, 0x1_0000...0xE_FFFF:
            true
        default: false
        }
    }

    static func isNameChar(_ v: UInt32) -> Bool {
        switch v {
        case 0x2D, 0x2E, 0x30...0x39, 0xB7, 0x300...0x36F, 0x203F...0x2040: true
        default: isNameStart(v)
        }
    }

    /// `Char`: what a character reference may name.
    static func isXMLChar(_ v: UInt32) -> Bool {
        switch v {
        case 0x09, 0x0A, 0x0D, 0x20...0xD7FF, 0xE000...0xFFFD, 0x1_0000...0x10_FFFF: true
        default: false
        }
    }
}

extension UInt8 {
    /// XML's whitespace: space, tab, line feed, carriage return (no form feed).
    var isXMLSpace: Bool { self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D }
}
