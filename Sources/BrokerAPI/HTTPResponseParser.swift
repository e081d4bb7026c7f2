/// An HTTP/1.x answer, read whole.
struct HTTPResponse: Sendable {
    var status: Int
    var reason: String
    /// Names lowercased, in order of arrival.
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first(where: { $0.name == name })?.value
    }
}

/// Reads an HTTP/1.x response from the bytes received so far. Called again with more bytes
/// until it is complete, so the client stops reading as soon as the body is whole (with
/// Content-Length or chunked framing) instead of waiting for the daemon to close.
enum HTTPResponseParser {
    enum Outcome: Sendable {
        case needMore
        case complete(HTTPResponse)
    }

    static let maximumHeadSize = 64 * 1024
    static let maximumBodySize = 16 * 1024 * 1024

    /// - Parameters:
    ///   - bytes: everything received on the connection so far.
    ///   - atEOF: whether the daemon closed its end (nothing more will come).
    ///   - method: the request's method (a HEAD answer has no body).
    static func parse(
        _ bytes: [UInt8], atEOF: Bool, method: String = "GET"
    ) throws(BrokerClientError) -> Outcome {
        var start = 0
        while true {
            guard let (headEnd, bodyStart) = findHeadEnd(bytes, from: start) else {
                if bytes.count - start > maximumHeadSize {
                    throw .protocolError("the response header is larger than \(maximumHeadSize) bytes")
                }
                if atEOF {
                    throw .protocolError(
                        bytes.count == start
                            ? "the daemon closed the connection without answering"
                            : "the connection closed inside the response header")
                }
                return .needMore
            }
            var response = try parseHead(bytes[start..<headEnd])

            // Interim answers (100 Continue and the like) precede the real one.
            if (100...199).contains(response.status) && response.status != 101 {
                start = bodyStart
                continue
            }

            if method == "HEAD" || response.status == 204 || response.status == 304
                || (100...199).contains(response.status)
            {
                return .complete(response)
            }

            if let transferEncoding = response.header("transfer-encoding") {
                let last = transferEncoding.split(separator: ",").last.map { trim($0).lowercased() }
                if last == "chunked" {
                    guard let body = try decodeChunked(bytes, from: bodyStart) else {
                        if atEOF { throw .protocolError("the connection closed inside a chunked body") }
                        return .needMore
                    }
                    response.body = body
                    return .complete(response)
                }
                // Another final coding: the body runs until the connection closes.
                return try untilEOF(bytes, from: bodyStart, atEOF: atEOF, response)
            }

            if let lengthField = response.header("content-length") {
                let length = try contentLength(lengthField)
                guard length <= maximumBodySize else {
                    throw .protocolError("the response body is larger than \(maximumBodySize) bytes")
                }
                if bytes.count - bodyStart >= length {
                    response.body = Array(bytes[bodyStart..<(bodyStart + length)])
                    return .complete(response)
                }
                if atEOF {
                    throw .protocolError(
                        "the connection closed after \(bytes.count - bodyStart) of \(length) body bytes")
                }
                return .needMore
            }

            return try untilEOF(bytes, from: bodyStart, atEOF: atEOF, response)
        }
    }

    /// The head of an answer whose body is read as it arrives (an event stream), once it is
    /// whole: the answer without its body, and where the body starts.
    static func head(_ bytes: [UInt8]) throws(BrokerClientError) -> (HTTPResponse, bodyStart: Int)? {
        guard let (headEnd, bodyStart) = findHeadEnd(bytes, from: 0) else {
            if bytes.count > maximumHeadSize {
                throw .protocolError("the response header is larger than \(maximumHeadSize) bytes")
            }
            return nil
        }
        return (try parseHead(bytes[..<headEnd]), bodyStart)
    }

    private static func untilEOF(
        _ bytes: [UInt8], from bodyStart: Int, atEOF: Bool, _ response: HTTPResponse
    ) throws(BrokerClientError) -> Outcome {
        guard bytes.count - bodyStart <= maximumBodySize else {
            throw .protocolError("the response body is larger than \(maximumBodySize) bytes")
        }
        guard atEOF else { return .needMore }
        var response = response
        response.body = Array(bytes[bodyStart...])
        return .complete(response)
    }

    /// The end of the header lines and the start of the body: after the first empty line
    /// (CRLF CRLF, or bare LF LF, which is tolerated).
    private static func findHeadEnd(_ bytes: [UInt8], from start: Int) -> (Int, Int)? {
        var index = start
        while let newline = bytes[index...].firstIndex(of: lf) {
            let next = newline + 1
            if next < bytes.count && bytes[next] == lf { return (newline, next + 1) }
            if next + 1 < bytes.count && bytes[next] == cr && bytes[next + 1] == lf {
                return (newline, next + 2)
            }
            if next >= bytes.count { return nil }
            index = next
        }
        return nil
    }

    private static func parseHead(_ head: ArraySlice<UInt8>) throws(BrokerClientError) -> HTTPResponse {
        var lines = head.split(separator: lf, omittingEmptySubsequences: false).map { line in
            line.last == cr ? line.dropLast() : line
        }
        // Tolerate one empty line before the status line (RFC 9112 §2.2).
        if lines.first?.isEmpty == true && lines.count > 1 { lines.removeFirst() }
        guard let statusLine = lines.first else { throw .protocolError("no status line") }

        // HTTP/1.1 200 OK
        let parts = statusLine.split(separator: space, maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/1.".utf8)),
            parts[1].count == 3, parts[1].allSatisfy({ (0x30...0x39).contains($0) }),
            let status = Int(String(decoding: parts[1], as: UTF8.self))
        else {
            throw .protocolError("not an HTTP/1.x status line")
        }
        let reason = parts.count == 3 ? String(decoding: parts[2], as: UTF8.self) : ""

        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            if let first = line.first, first == space || first == tab {
                // Obsolete line folding: continues the previous field.
                guard !headers.isEmpty else { throw .protocolError("a header line starts with a space") }
                headers[headers.count - 1].value += " " + trim(line)
                continue
            }
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > line.startIndex else {
                throw .protocolError("a header line has no field name")
            }
            let name = String(decoding: line[..<colon], as: UTF8.self).lowercased()
            headers.append((name, trim(line[(colon + 1)...])))
        }
        return HTTPResponse(status: status, reason: reason, headers: headers, body: [])
    }

    /// `Content-Length`, also as a list of equal values ("12, 12").
    private static func contentLength(_ field: String) throws(BrokerClientError) -> Int {
        let values = Set(field.split(separator: ",").map { trim($0) })
        guard values.count == 1, let value = values.first, !value.isEmpty, value.count <= 18,
            value.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let length = Int(value)
        else {
            throw .protocolError("invalid Content-Length")
        }
        return length
    }

    /// The decoded body, or nil while it is incomplete.
    static func decodeChunked(_ bytes: [UInt8], from start: Int) throws(BrokerClientError) -> [UInt8]? {
        var body: [UInt8] = []
        var index = start
        while true {
            guard let newline = bytes[index...].firstIndex(of: lf) else { return nil }
            var sizeLine = bytes[index..<newline]
            if sizeLine.last == cr { sizeLine = sizeLine.dropLast() }
            if let semicolon = sizeLine.firstIndex(of: UInt8(ascii: ";")) {
                sizeLine = sizeLine[..<semicolon] // chunk extensions are ignored
            }
            let sizeText = trim(sizeLine)
            guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16) else {
                throw .protocolError("invalid chunk size")
            }
            index = newline + 1

            if size == 0 {
                // Trailer fields, then an empty line.
                while true {
                    guard let end = bytes[index...].firstIndex(of: lf) else { return nil }
                    let line = bytes[index..<end]
                    if line.isEmpty || (line.count == 1 && line.first == cr) { return body }
                    index = end + 1
                }
            }

            guard body.count + size <= maximumBodySize else {
                throw .protocolError("the response body is larger than \(maximumBodySize) bytes")
            }
            guard bytes.count >= index + size else { return nil }
            body.append(contentsOf: bytes[index..<(index + size)])
            index += size

            guard index < bytes.count else { return nil }
            if bytes[index] == cr {
                guard index + 1 < bytes.count else { return nil }
                guard bytes[index + 1] == lf else { throw .protocolError("a chunk does not end with CRLF") }
                index += 2
            } else if bytes[index] == lf {
                index += 1
            } else {
                throw .protocolError("a chunk does not end with CRLF")
            }
        }
    }

    private static func trim<S: Collection<UInt8>>(_ bytes: S) -> String {
        let array = Array(bytes)
        guard let first = array.firstIndex(where: { $0 != space && $0 != tab }),
            let last = array.lastIndex(where: { $0 != space && $0 != tab })
        else { return "" }
        return String(decoding: array[first...last], as: UTF8.self)
    }

    private static func trim(_ text: Substring) -> String { trim(Array(text.utf8)) }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
}
