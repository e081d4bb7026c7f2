/// Pulls string properties (`key:'value'`, `"key":"value"`) out of the JavaScript of a login
/// page without evaluating it.
enum JavaScriptScanning {
    /// Every string value assigned to property `key`, in page order, fully unescaped.
    ///
    /// The key must stand alone: `urlPost` does not match `urlPostMsa` or `surlPost`. Quoted
    /// keys (JSON style) are accepted as well as bare ones.
    static func stringValues(forKey key: String, in page: [UInt8]) -> [String] {
        let needle = key.bytes
        var results: [String] = []
        var from = 0
        while let at = page.firstIndex(of: needle, from: from) {
            from = at + 1
            var quote: UInt8? = nil
            if at > 0 {
                let before = page[at - 1]
                if before == .ascii("'") || before == .ascii("\"") {
                    quote = before
                } else if before.isIdentifierByte {
                    continue
                }
            }
            var i = at + needle.count
            if let quote {
                guard i < page.count, page[i] == quote else { continue }
                i += 1
            } else if i < page.count, page[i].isIdentifierByte {
                continue
            }
            while i < page.count && page[i].isASCIIWhitespace { i += 1 }
            guard i < page.count, page[i] == .ascii(":") else { continue }
            i += 1
            while i < page.count && page[i].isASCIIWhitespace { i += 1 }
            guard let (value, end) = readStringLiteral(page, at: i) else { continue }
            results.append(String(utf8Bytes: value))
            from = end
        }
        return results
    }

    /// Reads the JavaScript string literal whose opening quote is at `start` and returns its
    /// unescaped UTF-8 and the index after the closing quote. Nil when `start` is not a quote
    /// or the literal never ends.
    static func readStringLiteral(_ b: [UInt8], at start: Int) -> (value: [UInt8], end: Int)? {
        guard start < b.count else { return nil }
        let quote = b[start]
        guard quote == .ascii("'") || quote == .ascii("\"") || quote == .ascii("`") else { return nil }
        var out: [UInt8] = []
        var i = start + 1
        while i < b.count {
            let c = b[i]
            if c == quote { return (out, i + 1) }
            if c == .ascii("\n") && quote != .ascii("`") { return nil }
            guard c == .ascii("\\") else {
                out.append(c)
                i += 1
                continue
            }
            guard i + 1 < b.count else { return nil }
            let e = b[i + 1]
            i += 2
            switch e {
            case .ascii("n"): out.append(0x0A)
            case .ascii("r"): out.append(0x0D)
            case .ascii("t"): out.append(0x09)
            case .ascii("b"): out.append(0x08)
            case .ascii("f"): out.append(0x0C)
            case .ascii("v"): out.append(0x0B)
            case .ascii("0") where !(i < b.count && (0x30...0x39).contains(b[i])): out.append(0)
            case .ascii("\n"): break // line continuation
            case .ascii("\r"):
                if i < b.count && b[i] == .ascii("\n") { i += 1 }
            case .ascii("x"):
                if i + 1 < b.count, let h = b[i].hexValue, let l = b[i + 1].hexValue {
                    appendUTF8(Unicode.Scalar(h << 4 | l), to: &out)
                    i += 2
                } else {
                    out.append(e)
                }
            case .ascii("u"):
                if let (unit, next) = readUnicodeEscape(b, at: i) {
                    i = next
                    if (0xD800...0xDBFF).contains(unit), i + 1 < b.count, b[i] == .ascii("\\"),
                        b[i + 1] == .ascii("u"), let (low, afterLow) = readUnicodeEscape(b, at: i + 2),
                        (0xDC00...0xDFFF).contains(low)
                    {
                        let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        appendUTF8(Unicode.Scalar(scalar) ?? "\u{FFFD}", to: &out)
                        i = afterLow
                    } else {
                        appendUTF8(Unicode.Scalar(unit) ?? "\u{FFFD}", to: &out)
                    }
                } else {
                    out.append(e)
                }
            default:
                // `\'`, `\"`, `\\`, `\/` and any other escaped character stand for themselves.
                out.append(e)
            }
        }
        return nil
    }

    /// Reads `XXXX` or `{X...}` after `\u`.
    private static func readUnicodeEscape(_ b: [UInt8], at i: Int) -> (UInt32, Int)? {
        if i < b.count, b[i] == .ascii("{") {
            var value: UInt32 = 0
            var j = i + 1
            while j < b.count, j - i <= 7, let v = b[j].hexValue {
                value = value << 4 | UInt32(v)
                j += 1
            }
            guard j > i + 1, j < b.count, b[j] == .ascii("}") else { return nil }
            return (value, j + 1)
        }
        guard i + 3 < b.count else { return nil }
        var value: UInt32 = 0
        for k in 0..<4 {
            guard let v = b[i + k].hexValue else { return nil }
            value = value << 4 | UInt32(v)
        }
        return (value, i + 4)
    }
}
