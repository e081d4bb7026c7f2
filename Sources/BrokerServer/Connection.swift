import BrokerCore
import NIOHTTP1

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
        /// Write what was produced (the event stream's head), and stream events from now on
        /// (`GET /v1/events`): nothing more is read or answered on this connection.
        case stream(EventSubscription)
    }

    let router: Router
    let limits: ServerLimits
    private(set) var peer: Peer?
    /// The loop's heads of token reads answered before, shared by its connections (same limits).
    let repeats: RepeatedReads?
    /// The limits' timeouts in nanoseconds.
    private let idleTimeout: UInt64
    private let requestTimeout: UInt64

    /// Received bytes; those before `start` are consumed. While `receive` answers from the
    /// caller's bytes in place (`borrowed`), `start` counts in those instead, and `input` is empty.
    /// Unchecked exclusivity: see `ServerLoop.slots`.
    @exclusivity(unchecked) private var input: [UInt8] = []
    private var start = 0
    /// The bytes `receive` was given, while it answers from them without copying them into
    /// `input`: when nothing was buffered before them, which is every request of a client that
    /// waits for its answer. What they hold beyond the last whole request is kept in `input`
    /// before `receive` returns.
    private var borrowed: UnsafeBufferPointer<UInt8>?
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
    /// The connection became an event stream: the owner writes it; no timer applies.
    private(set) var streaming = false

    private(set) var lastActivity: UInt64
    /// The first byte of the request being received, if any.
    private(set) var requestStarted: UInt64?

    init(router: Router, limits: ServerLimits, peer: Peer?, now: UInt64, repeats: RepeatedReads? = nil) {
        self.router = router
        self.limits = limits
        self.peer = peer
        self.repeats = repeats
        self.lastActivity = now
        idleTimeout = limits.idleNanoseconds
        requestTimeout = limits.requestNanoseconds
    }

    /// Starts again as a new connection's, as `init` leaves it (the event loop keeps the objects
    /// of closed connections for the next ones). The input buffer keeps its capacity when small.
    func reset(peer: Peer?, now: UInt64) {
        self.peer = peer
        input.removeAll(keepingCapacity: input.capacity <= 4096)
        start = 0
        borrowed = nil
        scanned = 0
        head = nil
        continueSent = false
        chunked = nil
        busy = false
        busyKeepAlive = false
        busyIsHEAD = false
        closing = false
        inputClosed = false
        quiescing = false
        streaming = false
        lastActivity = now
        requestStarted = nil
        moreToAnswer = false
    }

    /// Its answer was written outside it (see `ServerLoop.answerWhole`): nothing more is read,
    /// and the owner closes once what is pending is written.
    func closeAfterWriting() { closing = true }

    /// Bytes received and not yet answered.
    var buffered: Int { (borrowed?.count ?? input.count) - start }

    /// Every byte received and not dropped yet, those before `start` included: the caller's
    /// bytes while `receive` answers from them, else `input`.
    private func withReceived<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let borrowed { return body(borrowed) }
        return input.withUnsafeBufferPointer(body)
    }

    /// The bytes after `start`.
    private func withUnanswered<R>(_ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        withReceived { body(UnsafeBufferPointer(rebasing: $0[start...])) }
    }

    /// Bytes arrived: answers every whole request they complete, in order.
    func receive(_ bytes: UnsafeRawBufferPointer, now: UInt64, into out: inout [UInt8]) -> Next {
        guard !closing else { return .close }
        // What a reader of an event stream sends is not read: it asked for the stream and no more.
        guard !streaming else { return .proceed }
        lastActivity = now
        guard buffered == 0 else {
            input.append(contentsOf: bytes)
            return process(now: now, into: &out)
        }
        requestStarted = now
        emptyInput()
        borrowed = bytes.assumingMemoryBound(to: UInt8.self)
        let next = process(now: now, into: &out)
        if let rest = borrowed {
            // A request not whole yet, or requests behind one answered later or over the budget.
            borrowed = nil
            if start < rest.count { input.append(contentsOf: rest[start...]) }
            start = 0
        }
        return next
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
        guard !busy, !streaming else { return false }
        if now &- lastActivity >= idleTimeout { return true }
        if let requestStarted, now &- requestStarted >= requestTimeout { return true }
        return false
    }

    /// When `expired` may next become true.
    var deadline: UInt64 {
        guard !streaming else { return .max }
        var next = lastActivity &+ idleTimeout
        if let requestStarted { next = min(next, requestStarted &+ requestTimeout) }
        return next
    }

    /// Output one call may produce before the owner writes it: a client that pipelines many small
    /// requests without reading gets its answers as it reads them, not all at once in memory.
    static let outputBudget = 256 * 1024

    /// Requests one call answers at most. The event loop serves every connection in turn: a
    /// client pipelining thousands of requests gets this many answered, then waits for its next
    /// turn while the loop accepts and serves the others.
    static let requestBudget = 32

    /// Set when `process` stopped at `outputBudget` or `requestBudget` with requests left: call
    /// it again once the output is written (on the connection's next turn).
    private(set) var moreToAnswer = false

    /// Answers the whole requests in the buffer until one must wait, the connection must close,
    /// or the output reaches `outputBudget` or the answers `requestBudget`.
    func process(now: UInt64, into out: inout [UInt8]) -> Next {
        moreToAnswer = false
        var answered = 0
        while !busy && !closing && !streaming {
            if buffered == 0 {
                // Nothing left to answer (after the last request, usually): nothing to parse.
                dropAnswered()
                return inputClosed ? .close : .proceed
            }
            if out.count >= Self.outputBudget || answered >= Self.requestBudget {
                moreToAnswer = buffered > 0
                return .proceed
            }
            if head == nil, !quiescing, let repeats, let peer {
                // A head answered before: its read is known, and often its answer too.
                let (length, keepAlive) = withUnanswered {
                    repeats.serve($0, router: router, peer: peer, now: now, into: &out)
                }
                if length > 0 {
                    answered += 1
                    consumed(length, now: now)
                    if !keepAlive {
                        closing = true
                        return .close
                    }
                    continue
                }
            }
            let step: ParseStep = withUnanswered { parse($0) }
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
                // Something is buffered here: the loop returns at its top when nothing is.
                if start > 4096, borrowed == nil {
                    input.removeFirst(start)
                    start = 0
                }
                return inputClosed ? .close : .proceed
            case .reject(let response):
                response.serialize(into: &out, keepAlive: false, omitBody: false)
                closing = true
                return .close
            case .request(let request, let length):
                answered += 1
                // A request that is its head alone can be recognized by its bytes next time.
                let headOnly = head.map { $0.length == length && !$0.chunked } ?? false
                let requestStart = start
                consumed(length, now: now)
                if let next = answer(request, head: headOnly ? requestStart..<start : nil, now: now, into: &out) {
                    if streaming {
                        input = []
                        borrowed = nil
                        start = 0
                    }
                    return next
                }
            }
        }
        return closing ? .close : .proceed
    }

    /// Everything received was answered.
    private func dropAnswered() {
        if let borrowed {
            start = borrowed.count
        } else {
            emptyInput()
        }
        requestStarted = nil
    }

    /// The buffer starts again, with its capacity when small.
    private func emptyInput() {
        if !input.isEmpty { input.removeAll(keepingCapacity: input.capacity <= 16 * 1024) }
        start = 0
    }

    /// Marks the request in front (`length` bytes) as received and answered.
    private func consumed(_ length: Int, now: UInt64) {
        start += length
        scanned = 0
        head = nil
        chunked = nil
        continueSent = false
        requestStarted = buffered > 0 ? now : nil
    }

    /// `head`: where the request's bytes are among those received (`withReceived`), when they are
    /// its head alone.
    private func answer(_ request: ParsedRequest, head: Range<Int>?, now: UInt64, into out: inout [UInt8]) -> Next? {
        guard let peer else {
            APIResponse.error(BrokerError(.forbidden, "peer credentials unavailable"), close: true)
                .serialize(into: &out, keepAlive: false, omitBody: false)
            closing = true
            return .close
        }
        let isHEAD = request.method == .HEAD
        if let read = router.tokenRead(request) {
            var answer: TokenAnswer?
            if router.serveToken(
                read, peer: peer, keepAlive: request.keepAlive && !quiescing, answer: &answer, generation: nil,
                started: now, into: &out)
            {
                if let head, let repeats {
                    withReceived {
                        repeats.remember(
                            UnsafeBufferPointer(rebasing: $0[head]), read: read, keepAlive: request.keepAlive)
                    }
                }
                if !request.keepAlive || quiescing {
                    closing = true
                    return .close
                }
                return nil
            }
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
        case .stream(let subscription):
            if quiescing {
                APIResponse.error(BrokerError(.temporarilyUnavailable, "the daemon is stopping"), close: true)
                    .serialize(into: &out, keepAlive: false, omitBody: false)
                closing = true
                return .close
            }
            out.append(contentsOf: EventFrames.head)
            streaming = true
            requestStarted = nil
            return .stream(subscription)
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
                    return .reject(
                        .error(
                            BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"),
                            close: true))
                }
                head = parsed
            }
        }
        let head = head!
        if head.chunked {
            // Chunk framing and trailers may add to the body, but not without bound.
            if bytes.count - head.length > 2 * limits.maxBodyBytes + limits.maxHeaderBytes {
                return .reject(
                    .error(
                        BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"),
                        close: true))
            }
            if chunked == nil { chunked = ChunkedBody(position: head.length) }
            switch chunked!.advance(bytes, limits: limits) {
            case .incomplete:
                return .incomplete(sendContinue: head.expectContinue && !continueSent && bytes.count == head.length)
            case .failure(let response):
                return .reject(response)
            case .done(let length):
                return .request(
                    ParsedRequest(
                        method: head.method, target: head.target, keepAlive: head.keepAlive, body: chunked!.body),
                    length: length)
            }
        }
        let total = head.length + head.contentLength
        guard bytes.count >= total else {
            return .incomplete(sendContinue: head.expectContinue && !continueSent && bytes.count == head.length)
        }
        let body = head.contentLength == 0 ? [] : Array(bytes[head.length..<total])
        return .request(
            ParsedRequest(method: head.method, target: head.target, keepAlive: head.keepAlive, body: body),
            length: total)
    }

    private func tooLargeHead() -> APIResponse {
        APIResponse(
            status: .requestHeaderFieldsTooLarge,
            body: APIResponse.error(
                BrokerError(.badRequest, "request headers are larger than \(limits.maxHeaderBytes) bytes")
            ).body,
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
