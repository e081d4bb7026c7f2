import BrokerCore
import NIOHTTP1

/// Limits on what a client may send.
public struct ServerLimits: Sendable {
    public var maxHeaderBytes = 8 * 1024
    public var maxBodyBytes = 64 * 1024
    /// A connection that sends nothing for this long is closed.
    public var idleTimeout: Duration = .seconds(10)
    /// A request must arrive whole, head and body, within this long of its first byte; else the
    /// connection is closed. The idle timeout restarts on every byte, so without this a client
    /// sending a byte now and then could hold a connection for ever.
    public var requestTimeout: Duration = .seconds(5)
    /// Connections open at once. One more is answered 503 `temporarily_unavailable` and closed at
    /// once, so that the daemon's memory and descriptors stay bounded.
    public var maxConnections = 16384

    public init() {}
}

extension Duration {
    var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        // Capped at about 31 years, so that adding it to a monotonic time cannot overflow.
        return UInt64(min(max(0, seconds), 1_000_000_000)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// One connection's HTTP/1.1 exchange without the socket: bytes in, answers out. The event loop
/// (`ServerLoop`) feeds it what it reads and writes what it produces; the fuzzer drives the same
/// type directly. Requests are answered in order: a request answered asynchronously holds the
/// ones behind it until its answer is written.
///
/// Times are monotonic nanoseconds, passed in, so that the timers can be driven by a test.
final class HTTPConnection {
    /// What the owner does next.
    enum Next {
        /// Write what was produced (if anything) and wait for more bytes.
        case proceed
        /// Write what was produced, run this, and pass its answer to `complete(_:now:into:)`.
        case later(@Sendable () async -> APIResponse)
        /// Write what was produced, then close.
        case close
    }

    let router: Router
    let limits: ServerLimits
    let peer: Peer?
    /// The limits' timeouts in nanoseconds, converted once.
    private let idleTimeout: UInt64
    private let requestTimeout: UInt64

    /// Received bytes; those before `start` are consumed.
    private var input: [UInt8] = []
    private var start = 0
    /// Where the search for the end of the head resumes, relative to `start`.
    private var scanned = 0
    /// The head of the request whose body is still arriving.
    private var head: RequestHead?
    private var continueSent = false
    /// The chunked body being received.
    private var chunked: ChunkedBody?

    /// An answer is being computed off the loop.
    private(set) var busy = false
    private var busyKeepAlive = false
    private var busyIsHEAD = false
    /// Once set, nothing more is read or answered; the owner closes after writing.
    private(set) var closing = false
    private(set) var inputClosed = false
    private(set) var quiescing = false

    private(set) var lastActivity: UInt64
    /// The first byte of the request being received, if any.
    private(set) var requestStarted: UInt64?

    init(router: Router, limits: ServerLimits, peer: Peer?, now: UInt64) {
        self.router = router
        self.limits = limits
        self.peer = peer
        self.lastActivity = now
        idleTimeout = limits.idleTimeout.nanoseconds
        requestTimeout = limits.requestTimeout.nanoseconds
    }

    /// Bytes received and not yet answered.
    var buffered: Int { input.count - start }

    /// Bytes arrived: answers every whole request they complete, in order.
    func receive(_ bytes: UnsafeRawBufferPointer, now: UInt64, into out: inout [UInt8]) -> Next {
        guard !closing else { return .close }
        lastActivity = now
        if buffered == 0 { requestStarted = now }
        input.append(contentsOf: bytes)
        return process(now: now, into: &out)
    }

    /// The client shut down its writing side: what is whole is answered, then the connection closes.
    func inputDidClose(now: UInt64, into out: inout [UInt8]) -> Next {
        inputClosed = true
        if busy { return .proceed }
        return process(now: now, into: &out)
    }

    /// The answer to the request that was being computed.
    func complete(_ response: APIResponse, now: UInt64, into out: inout [UInt8]) -> Next {
        busy = false
        lastActivity = now
        // A half-close does not end keep-alive here: whole requests behind this one are still
        // answered, and the connection closes once none is left.
        let keep = busyKeepAlive && !response.close && !quiescing
        response.serialize(into: &out, keepAlive: keep, omitBody: busyIsHEAD)
        guard keep else {
            closing = true
            return .close
        }
        if buffered > 0 { requestStarted = now }
        return process(now: now, into: &out)
    }

    /// The server is stopping: returns true when the connection can be closed now (nothing is
    /// being answered or received); else it closes after the answer it owes.
    func quiesce() -> Bool {
        quiescing = true
        return !busy && buffered == 0
    }

    /// Whether a timer ran out: nothing received for the idle timeout, or a request not whole
    /// within the request timeout. A request being answered is not cut short.
    func expired(now: UInt64) -> Bool {
        guard !busy else { return false }
        if now &- lastActivity >= idleTimeout { return true }
        if let requestStarted, now &- requestStarted >= requestTimeout { return true }
        return false
    }

    /// When `expired` may next become true.
    var deadline: UInt64 {
        var next = lastActivity &+ idleTimeout
        if let requestStarted { next = min(next, requestStarted &+ requestTimeout) }
        return next
    }

    /// Output one call may produce before the owner writes it: a client that pipelines many small
    /// requests without reading gets its answers as it reads them, not all at once in memory.
    static let outputBudget = 256 * 1024

    /// Set when `process` stopped at `outputBudget` with requests left: call it again once the
    /// output is written.
    private(set) var moreToAnswer = false

    /// Answers the whole requests in the buffer until one must wait, the connection must close,
    /// or the output reaches `outputBudget`.
    func process(now: UInt64, into out: inout [UInt8]) -> Next {
        moreToAnswer = false
        while !busy && !closing {
            if out.count >= Self.outputBudget {
                moreToAnswer = buffered > 0
                return .proceed
            }
            let step: ParseStep = input.withUnsafeBufferPointer { all in
                parse(UnsafeBufferPointer(rebasing: all[start...]))
            }
            switch step {
            case .incomplete(let sendContinue):
                if sendContinue {
                    continueSent = true
                    out.append(contentsOf: Self.continueLine)
                }
                if inputClosed && buffered > 0 {
                    // A request cut short by the half-close can never be completed.
                    APIResponse.error(BrokerError(.badRequest, "the request ended before it was complete"), close: true)
                        .serialize(into: &out, keepAlive: false, omitBody: false)
                    closing = true
                    return .close
                }
                if buffered == 0 {
                    input.removeAll(keepingCapacity: input.capacity <= 16 * 1024)
                    start = 0
                    requestStarted = nil
                } else if start > 4096 {
                    input.removeFirst(start)
                    start = 0
                }
                return inputClosed ? .close : .proceed
            case .reject(let response):
                response.serialize(into: &out, keepAlive: false, omitBody: false)
                closing = true
                return .close
            case .request(let request, let length):
                start += length
                scanned = 0
                head = nil
                chunked = nil
                continueSent = false
                requestStarted = buffered > 0 ? now : nil
                if let next = answer(request, into: &out) { return next }
            }
        }
        return closing ? .close : .proceed
    }

    private func answer(_ request: ParsedRequest, into out: inout [UInt8]) -> Next? {
        guard let peer else {
            APIResponse.error(BrokerError(.forbidden, "peer credentials unavailable"), close: true)
                .serialize(into: &out, keepAlive: false, omitBody: false)
            closing = true
            return .close
        }
        let isHEAD = request.method == .HEAD
        if router.serveCachedToken(request, peer: peer, keepAlive: request.keepAlive && !quiescing, omitBody: isHEAD, into: &out) {
            if !request.keepAlive || quiescing {
                closing = true
                return .close
            }
            return nil
        }
        switch router.route(request, peer: peer) {
        case .now(let response):
            let keep = request.keepAlive && !response.close && !quiescing
            response.serialize(into: &out, keepAlive: keep, omitBody: isHEAD)
            if !keep {
                closing = true
                return .close
            }
            return nil
        case .later(let work):
            busy = true
            busyKeepAlive = request.keepAlive
            busyIsHEAD = isHEAD
            return .later(work)
        }
    }

    static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    // MARK: - Parsing

    enum ParseStep {
        case incomplete(sendContinue: Bool)
        case reject(APIResponse)
        case request(ParsedRequest, length: Int)
    }

    /// One request from the front of `bytes`.
    private func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> ParseStep {
        if head == nil {
            guard let end = Self.headEnd(bytes, from: max(0, scanned - 3)) else {
                scanned = bytes.count
                if bytes.count > limits.maxHeaderBytes { return .reject(tooLargeHead()) }
                return .incomplete(sendContinue: false)
            }
            if end > limits.maxHeaderBytes { return .reject(tooLargeHead()) }
            switch RequestHead.parse(UnsafeBufferPointer(rebasing: bytes[..<end])) {
            case .failure(let message):
                return .reject(.error(BrokerError(.badRequest, message), close: true))
            case .success(let parsed):
                if parsed.contentLength > limits.maxBodyBytes {
                    return .reject(.error(BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"), close: true))
                }
                head = parsed
            }
        }
        let head = head!
        if head.chunked {
            // Chunk framing and trailers may add to the body, but not without bound.
            if bytes.count - head.length > 2 * limits.maxBodyBytes + limits.maxHeaderBytes {
                return .reject(.error(BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"), close: true))
            }
            if chunked == nil { chunked = ChunkedBody(position: head.length) }
            switch chunked!.advance(bytes, limits: limits) {
            case .incomplete:
                return .incomplete(sendContinue: head.expectContinue && !continueSent && bytes.count == head.length)
            case .failure(let response):
                return .reject(response)
            case .done(let length):
                return .request(
                    ParsedRequest(method: head.method, target: head.target, keepAlive: head.keepAlive, body: chunked!.body), length: length)
            }
        }
        let total = head.length + head.contentLength
        guard bytes.count >= total else {
            return .incomplete(sendContinue: head.expectContinue && !continueSent && bytes.count == head.length)
        }
        let body = head.contentLength == 0 ? [] : Array(bytes[head.length..<total])
        return .request(
            ParsedRequest(method: head.method, target: head.target, keepAlive: head.keepAlive, body: body), length: total)
    }

    private func tooLargeHead() -> APIResponse {
        APIResponse(
            status: .requestHeaderFieldsTooLarge,
            body: APIResponse.error(BrokerError(.badRequest, "request headers are larger than \(limits.maxHeaderBytes) bytes")).body,
            close: true)
    }

    /// The length of the head, blank line included, if it has arrived: ends at CRLF CRLF (or a
    /// bare LF LF, which clients of old accepted too).
    static func headEnd(_ bytes: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        var i = from
        let count = bytes.count
        while i < count {
            if bytes[i] == 0x0A {
                if i + 1 < count, bytes[i + 1] == 0x0A { return i + 2 }
                if i + 2 < count, bytes[i + 1] == 0x0D, bytes[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }
}

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
            guard let colon = line.firstIndex(of: 0x3A), colon > line.startIndex else { return .failure("malformed header field") }
            let name = line[line.startIndex..<colon]
            // Also refuses folded lines (leading whitespace) and whitespace before the colon.
            guard name.allSatisfy({ isToken($0) }) else { return .failure("malformed header field") }
            var value = line[(colon + 1)...]
            while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
            while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
            guard value.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else { return .failure("malformed header field") }
            switch name.count {
            case 14 where equalsLowercase(name, "content-length"):
                guard !value.isEmpty, value.count <= 15, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                    return .failure("invalid Content-Length")
                }
                let length = value.reduce(0) { $0 * 10 + Int($1 - 0x30) }
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
        return .success(RequestHead(
            method: HTTPMethod(rawValue: method), target: String(decoding: targetBytes, as: UTF8.self), keepAlive: keepAlive,
            contentLength: contentLength ?? 0, chunked: chunked, expectContinue: expectContinue, length: head.count))
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

/// A chunked request body, decoded as it arrives (RFC 9112, section 7.1): where decoding
/// stopped is kept, so that a body dribbled in small reads is not decoded again from the start.
struct ChunkedBody {
    enum Phase {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers
    }

    enum Step {
        case incomplete
        case failure(APIResponse)
        case done(length: Int)
    }

    /// Offset in the request's bytes where decoding resumes.
    var position: Int
    var phase = Phase.size
    var body: [UInt8] = []

    mutating func advance(_ bytes: UnsafeBufferPointer<UInt8>, limits: ServerLimits) -> Step {
        while true {
            switch phase {
            case .size:
                guard let end = lineEnd(bytes) else {
                    return bytes.count - position > 1024 ? .failure(.error(BrokerError(.badRequest, "malformed chunk size"), close: true)) : .incomplete
                }
                var size = 0
                var digits = 0
                var i = position
                while i < end.content, let digit = Self.hex(bytes[i]) {
                    size = size * 16 + digit
                    digits += 1
                    i += 1
                    if digits > 8 { return .failure(.error(BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"), close: true)) }
                }
                // Chunk extensions (`;name=value`) are allowed and ignored.
                while i < end.content, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
                guard digits > 0, i == end.content || bytes[i] == 0x3B else {
                    return .failure(.error(BrokerError(.badRequest, "malformed chunk size"), close: true))
                }
                if body.count + size > limits.maxBodyBytes {
                    return .failure(.error(BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"), close: true))
                }
                position = end.next
                phase = size == 0 ? .trailers : .data(remaining: size)
            case .data(let remaining):
                let available = min(remaining, bytes.count - position)
                guard available > 0 else { return .incomplete }
                body.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[position..<position + available]))
                position += available
                phase = remaining == available ? .dataEnd : .data(remaining: remaining - available)
            case .dataEnd:
                guard let end = lineEnd(bytes) else { return bytes.count - position >= 2 ? .failure(.error(BrokerError(.badRequest, "malformed chunk"), close: true)) : .incomplete }
                guard end.content == position else { return .failure(.error(BrokerError(.badRequest, "malformed chunk"), close: true)) }
                position = end.next
                phase = .size
            case .trailers:
                guard let end = lineEnd(bytes) else {
                    return bytes.count - position > limits.maxHeaderBytes ? .failure(.error(BrokerError(.badRequest, "trailer fields are too large"), close: true)) : .incomplete
                }
                let empty = end.content == position
                position = end.next
                if empty { return .done(length: position) }
            }
        }
    }

    /// The end of the line starting at `position`: where its content ends (before CR LF or LF)
    /// and where the next line starts.
    private func lineEnd(_ bytes: UnsafeBufferPointer<UInt8>) -> (content: Int, next: Int)? {
        var i = position
        while i < bytes.count {
            if bytes[i] == 0x0A { return (i > position && bytes[i - 1] == 0x0D ? i - 1 : i, i + 1) }
            i += 1
        }
        return nil
    }

    private static func hex(_ byte: UInt8) -> Int? {
        switch byte {
        case 0x30...0x39: Int(byte - 0x30)
        case 0x41...0x46: Int(byte - 0x41 + 10)
        case 0x61...0x66: Int(byte - 0x61 + 10)
        default: nil
        }
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
