import NIOHTTP1

/// A whole request, as the router takes it.
struct ParsedRequest {
    var method: HTTPMethod
    var target: String
    var keepAlive: Bool
    var body: [UInt8]
}

/// A request's head: the request line and the few header fields the server acts on. Strict:
/// anything that two parsers could read differently (whitespace before a colon, folded lines,
/// a Content-Length that is not plain digits or is given twice differently, Transfer-Encoding)
/// is refused with 400.
struct RequestHead {
    var method: HTTPMethod
    var target: String
    var keepAlive: Bool
    var contentLength: Int
    var chunked: Bool
    var expectContinue: Bool
    /// Bytes of the head, blank line included.
    var length: Int

    enum Parsed {
        case success(RequestHead)
        case failure(String)
    }

    static func parse(_ head: UnsafeBufferPointer<UInt8>) -> Parsed {
        var lines = LineReader(bytes: head)
        guard let requestLine = lines.next() else { return .failure("malformed HTTP request") }
        // METHOD SP target SP HTTP/1.x
        guard let firstSpace = requestLine.firstIndex(of: 0x20), firstSpace > 0, firstSpace <= 16 else {
            return .failure("malformed HTTP request line")
        }
        let methodBytes = requestLine[requestLine.startIndex..<firstSpace]
        guard methodBytes.allSatisfy({ isToken($0) }) else { return .failure("malformed HTTP request line") }
        let rest = requestLine[(firstSpace + 1)...]
        guard let secondSpace = rest.firstIndex(of: 0x20), secondSpace > rest.startIndex else {
            return .failure("malformed HTTP request line")
        }
        let targetBytes = rest[rest.startIndex..<secondSpace]
        guard targetBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .failure("malformed request target") }
        let version = rest[(secondSpace + 1)...]
        let http11: Bool
        if version.elementsEqual(http11Bytes) {
            http11 = true
        } else if version.elementsEqual(http10Bytes) {
            http11 = false
        } else {
            return .failure("unsupported HTTP version: HTTP/1.1 and HTTP/1.0 are served")
        }

        var keepAlive = http11
        var contentLength: Int?
        var expectContinue = false
        var chunked = false
        while let line = lines.next() {
            if line.isEmpty { break }
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex else {
                return .failure("malformed header field")
            }
            let name = line[line.startIndex..<colon]
            // Also refuses folded lines (leading whitespace) and whitespace before the colon.
            guard name.allSatisfy({ isToken($0) }) else { return .failure("malformed header field") }
            var value = line[(colon + 1)...]
            while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
            while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
            guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else {
                return .failure("malformed header field")
            }
            switch name.count {
            case 14 where equalsLowercase(name, "content-length"):
                guard !value.isEmpty, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    return .failure("invalid Content-Length")
                }
                // Plain digits too many for an Int declare a body over any limit: 413, not 400.
                let digits = value.drop(while: { $0 == 0x30 })
                let length = digits.count > 18 ? Int.max : digits.reduce(0) { $0 * 10 + Int($1 - 0x30) }
                if let contentLength, contentLength != length { return .failure("conflicting Content-Length fields") }
                contentLength = length
            case 17 where equalsLowercase(name, "transfer-encoding"):
                // Only `chunked` alone, once: anything else is a body this server cannot frame.
                guard http11, !chunked, value.count == 7, equalsLowercase(value, "chunked") else {
                    return .failure("unsupported Transfer-Encoding: send the body with Content-Length or chunked")
                }
                chunked = true
            case 10 where equalsLowercase(name, "connection"):
                for option in value.split(separator: 0x2C) {
                    var token = option[...]
                    while let first = token.first, first == 0x20 || first == 0x09 { token = token.dropFirst() }
                    while let last = token.last, last == 0x20 || last == 0x09 { token = token.dropLast() }
                    if token.count == 5, equalsLowercase(token, "close") { keepAlive = false }
                    if token.count == 10, equalsLowercase(token, "keep-alive"), !http11 { keepAlive = true }
                }
            case 6 where equalsLowercase(name, "expect"):
                expectContinue = value.count == 12 && equalsLowercase(value, "100-continue")
            default:
                break
            }
        }
        // Both framings at once is how requests are smuggled past a proxy.
        if chunked && contentLength != nil { return .failure("both Content-Length and Transfer-Encoding") }
        let method = String(decoding: methodBytes, as: UTF8.self)
        return .success(
            RequestHead(
                method: HTTPMethod(rawValue: method), target: String(decoding: targetBytes, as: UTF8.self),
                keepAlive: keepAlive,
                contentLength: contentLength ?? 0, chunked: chunked, expectContinue: expectContinue, length: head.count)
        )
    }

    private static let http11Bytes = Array("HTTP/1.1".utf8)
    private static let http10Bytes = Array("HTTP/1.0".utf8)

    /// RFC 9110 tchar.
    static func isToken(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case 0x21, 0x23, 0x24, 0x25, 0x26, 0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x5E, 0x5F, 0x60, 0x7C, 0x7E: true
        default: false
        }
    }

    /// ASCII case-insensitive comparison with a lowercase literal of the same length.
    static func equalsLowercase(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ lower: StaticString) -> Bool {
        guard bytes.count == lower.utf8CodeUnitCount else { return false }
        let literal = UnsafeBufferPointer(start: lower.utf8Start, count: lower.utf8CodeUnitCount)
        for (byte, expected) in zip(bytes, literal) where byte | 0x20 != expected && byte != expected {
            return false
        }
        return true
    }
}

/// Lines of a head, without their CR LF (or LF).
struct LineReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    mutating func next() -> Slice<UnsafeBufferPointer<UInt8>>? {
        guard position < bytes.count else { return nil }
        var end = position
        while end < bytes.count, bytes[end] != 0x0A { end += 1 }
        var lineEnd = end
        if lineEnd > position, bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
        let line = bytes[position..<lineEnd]
        position = end + 1
        return line
    }
}
