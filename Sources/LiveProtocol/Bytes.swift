/// Byte-level helpers shared by the readers. The formats are ASCII-structured, so scanning
/// UTF-8 bytes is simpler and faster than walking `String` indices.

extension UInt8 {
    static func ascii(_ s: Unicode.Scalar) -> UInt8 { UInt8(ascii: s) }

    var isASCIIWhitespace: Bool { self == 0x20 || self == 0x09 || self == 0x0A || self == 0x0D || self == 0x0C }

    /// Characters that may continue a JavaScript identifier (ASCII subset).
    var isIdentifierByte: Bool {
        switch self {
        case .ascii("a")...UInt8.ascii("z"), .ascii("A")...UInt8.ascii("Z"), .ascii("0")...UInt8.ascii("9"),
            .ascii("_"), .ascii("$"):
            true
        default: false
        }
    }

    var asciiLowercased: UInt8 { (0x41...0x5A).contains(self) ? self | 0x20 : self }

    var hexValue: UInt8? {
        switch self {
        case .ascii("0")...UInt8.ascii("9"): self - .ascii("0")
        case .ascii("a")...UInt8.ascii("f"): self - .ascii("a") + 10
        case .ascii("A")...UInt8.ascii("F"): self - .ascii("A") + 10
        default: nil
        }
    }
}

extension Array where Element == UInt8 {
    /// The first occurrence of `needle` at or after `start`.
    func firstIndex(of needle: [UInt8], from start: Int = 0) -> Int? {
        guard !needle.isEmpty, count >= needle.count else { return nil }
        let first = needle[0]
        var i = Swift.max(start, 0)
        let last = count - needle.count
        while i <= last {
            if self[i] == first {
                var j = 1
                while j < needle.count && self[i + j] == needle[j] { j += 1 }
                if j == needle.count { return i }
            }
            i += 1
        }
        return nil
    }

    func contains(_ needle: [UInt8]) -> Bool { firstIndex(of: needle) != nil }

    func asciiLowercased() -> [UInt8] { map(\.asciiLowercased) }

    func trimmingASCIIWhitespace() -> ArraySlice<UInt8> {
        var lo = startIndex
        var hi = endIndex
        while lo < hi && self[lo].isASCIIWhitespace { lo += 1 }
        while hi > lo && self[hi - 1].isASCIIWhitespace { hi -= 1 }
        return self[lo..<hi]
    }
}

extension String {
    var bytes: [UInt8] { Array(utf8) }

    init<C: Collection>(utf8Bytes: C) where C.Element == UInt8 {
        self = String(decoding: utf8Bytes, as: UTF8.self)
    }

    func trimmingASCIIWhitespace() -> String {
        String(utf8Bytes: bytes.trimmingASCIIWhitespace())
    }
}

/// Appends the UTF-8 encoding of a scalar.
func appendUTF8(_ scalar: Unicode.Scalar, to out: inout [UInt8]) {
    out.append(contentsOf: UTF8.encode(scalar)!)
}

/// Percent-decoding only: `+` stays `+`. Tokens are base64 and may carry a literal `+`, so the
/// readers of redirect fragments and mapping containers must not turn it into a space.
/// A `%` not followed by two hex digits is kept as it is.
func percentDecode(_ s: some StringProtocol, plusAsSpace: Bool = false) -> String {
    let b = Array(s.utf8)
    guard b.contains(.ascii("%")) || (plusAsSpace && b.contains(.ascii("+"))) else { return String(s) }
    var out: [UInt8] = []
    out.reserveCapacity(b.count)
    var i = 0
    while i < b.count {
        let c = b[i]
        if c == .ascii("%"), i + 2 < b.count, let h = b[i + 1].hexValue, let l = b[i + 2].hexValue {
            out.append(h << 4 | l)
            i += 3
        } else {
            out.append(plusAsSpace && c == .ascii("+") ? .ascii(" ") : c)
            i += 1
        }
    }
    return String(utf8Bytes: out)
}

/// True when the text holds at least one `%XX` escape.
func hasPercentEscape(_ s: String) -> Bool {
    let b = s.bytes
    var i = 0
    while i + 2 < b.count {
        if b[i] == .ascii("%"), b[i + 1].hexValue != nil, b[i + 2].hexValue != nil { return true }
        i += 1
    }
    return false
}

/// Decodes the XML/HTML character references a server can put in text or attribute values.
/// Unknown named entities are kept literally rather than dropped.
func decodeCharacterReferences(_ b: ArraySlice<UInt8>) -> [UInt8] {
    guard b.contains(.ascii("&")) else { return Array(b) }
    var out: [UInt8] = []
    out.reserveCapacity(b.count)
    var i = b.startIndex
    while i < b.endIndex {
        let c = b[i]
        guard c == .ascii("&") else {
            out.append(c)
            i += 1
            continue
        }
        // Find the terminating ';' within a short window.
        var j = i + 1
        while j < b.endIndex && j - i <= 12 && b[j] != .ascii(";") && b[j] != .ascii("&") { j += 1 }
        guard j < b.endIndex, b[j] == .ascii(";") else {
            out.append(c)
            i += 1
            continue
        }
        let name = b[(i + 1)..<j]
        if let replacement = characterReference(name) {
            appendUTF8(replacement, to: &out)
            i = j + 1
        } else {
            out.append(c)
            i += 1
        }
    }
    return out
}

private func characterReference(_ name: ArraySlice<UInt8>) -> Unicode.Scalar? {
    switch String(utf8Bytes: name) {
    case "amp": return "&"
    case "lt": return "<"
    case "gt": return ">"
    case "quot": return "\""
    case "apos": return "'"
    default: break
    }
    guard name.first == .ascii("#"), name.count >= 2 else { return nil }
    var digits = name.dropFirst()
    var radix: UInt32 = 10
    if digits.first == .ascii("x") || digits.first == .ascii("X") {
        radix = 16
        digits = digits.dropFirst()
    }
    guard !digits.isEmpty, digits.count <= 8 else { return nil }
    var value: UInt32 = 0
    for d in digits {
        guard let v = d.hexValue, UInt32(v) < radix else { return nil }
        value = value * radix + UInt32(v)
    }
    return Unicode.Scalar(value)
}
