import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Monotonic nanoseconds; the same clock NIO uses for deadlines.
@inline(__always) func nowNanos() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// What every connection shares: the fixed parts of the request and the measurement window.
struct RefreshPlan: Sendable {
    /// `Host` header value.
    var host: String
    /// `client_id=...&scope=...&grant_type=refresh_token&refresh_token=`, already percent-encoded.
    var formPrefix: [UInt8]
    /// Responses that complete in `[measureStart, measureEnd)` are counted; the rest is warm-up.
    var measureStart: UInt64
    var measureEnd: UInt64
    /// Expected count of measured requests per connection, to size the latency array once.
    var expectedPerConnection: Int
}

/// What one connection measured.
struct ConnectionResult: Sendable {
    var successes = 0
    var failures = 0
    /// Requests completed before the window opened (TLS handshake and warm-up).
    var warmupRequests = 0
    /// Latency of every measured request, successful or not, in nanoseconds.
    var latencies: [UInt64] = []
    /// Failed responses by HTTP status (0: a 200 without a refresh token in it).
    var failuresByStatus: [UInt: Int] = [:]
    /// The first failed response body, for diagnosis.
    var firstFailure: String?
    /// Set when the connection closed or errored before the window ended.
    var connectionError: String?
}

/// Sent down the pipeline to start the loop once the channel is set up.
struct StartRefreshing: Sendable {}

/// Drives one keep-alive connection as fast as the server answers: one refresh in flight, the
/// next sent as soon as the previous answer (and the new refresh token in it) has arrived.
///
/// Everything happens on the channel's event loop with no futures per request, so the client's
/// per-request cost is an HTTP encode/decode, a TLS record each way and a short byte scan.
final class RefreshLoopHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let plan: RefreshPlan
    private let done: EventLoopPromise<ConnectionResult>
    /// The refresh token to send next; rotate mode replaces it on every success.
    private var refreshToken: [UInt8]
    private var result = ConnectionResult()
    private var headers: HTTPHeaders
    private var status: UInt = 0
    private var body: ByteBuffer
    private var sentAt: UInt64 = 0
    private var finished = false

    init(plan: RefreshPlan, refreshToken: String, done: EventLoopPromise<ConnectionResult>) {
        self.plan = plan
        self.refreshToken = Array(refreshToken.utf8)
        self.done = done
        self.headers = HTTPHeaders([
            ("Host", plan.host),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ])
        self.body = ByteBufferAllocator().buffer(capacity: 2048)
        result.latencies.reserveCapacity(plan.expectedPerConnection)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is StartRefreshing {
            sendNext(context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    private func sendNext(context: ChannelHandlerContext) {
        var form = context.channel.allocator.buffer(capacity: plan.formPrefix.count + refreshToken.count * 3)
        form.writeBytes(plan.formPrefix)
        FormEncoding.writeEscaped(refreshToken, into: &form)
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/oauth20_token.srf", headers: headers)
        head.headers.add(name: "Content-Length", value: String(form.readableBytes))
        sentAt = nowNanos()
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(form))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status.code
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            let finishedAt = nowNanos()
            let token = status == 200 ? JSONScan.stringValue(of: "refresh_token", in: body) : nil
            if let token { refreshToken = token }
            if finishedAt < plan.measureStart {
                result.warmupRequests += 1
            } else if finishedAt < plan.measureEnd {
                result.latencies.append(finishedAt - sentAt)
                if token != nil {
                    result.successes += 1
                } else {
                    result.failures += 1
                    result.failuresByStatus[status == 200 ? 0 : status, default: 0] += 1
                    if result.firstFailure == nil {
                        result.firstFailure = body.getString(at: body.readerIndex, length: min(300, body.readableBytes))
                    }
                }
            }
            if finishedAt >= plan.measureEnd {
                finish(context: context)
            } else {
                // A failed refresh keeps the current token: in rotate mode it may still be
                // within its grace period, and the failure is what gets reported.
                sendNext(context: context)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !finished { result.connectionError = "\(error)" }
        finish(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished { result.connectionError = result.connectionError ?? "connection closed by the server" }
        finish(context: context)
    }

    private func finish(context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        done.succeed(result)
        context.close(promise: nil)
    }
}

/// application/x-www-form-urlencoded, strictly: everything but the RFC 3986 unreserved
/// characters is percent-encoded (refresh tokens carry `!`, `*` and `$`).
enum FormEncoding {
    private static let hex = Array("0123456789ABCDEF".utf8)

    @inline(__always) static func isUnreserved(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func writeEscaped(_ bytes: [UInt8], into buffer: inout ByteBuffer) {
        for b in bytes {
            if isUnreserved(b) {
                buffer.writeInteger(b)
            } else {
                buffer.writeInteger(UInt8(ascii: "%"))
                buffer.writeInteger(hex[Int(b >> 4)])
                buffer.writeInteger(hex[Int(b & 0xF)])
            }
        }
    }

    static func escape(_ text: String) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: text.utf8.count * 3)
        writeEscaped(Array(text.utf8), into: &buffer)
        return String(buffer: buffer)
    }

    /// `name=value&...` with both sides escaped.
    static func encode(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(escape($0.0))=\(escape($0.1))" }.joined(separator: "&")
    }
}

/// Just enough JSON reading for the hot path: the string value of a top-level key, found by a
/// byte search for `"key":"` instead of parsing the whole ~1.4 KB body.
///
/// livesim writes its token response compactly (no spaces after the colon); escapes in the
/// value (`\"`, `\\`, `\/`) are decoded, and any other escape makes the value unreadable.
enum JSONScan {
    /// Where `needle` first occurs: memchr for its first byte, then a compare.
    static func firstIndex(of needle: [UInt8], in haystack: UnsafeRawBufferPointer) -> Int? {
        guard let base = haystack.baseAddress, !needle.isEmpty, haystack.count >= needle.count else { return nil }
        let last = haystack.count - needle.count
        var from = 0
        return needle.withUnsafeBytes { n -> Int? in
            while from <= last {
                guard let hit = memchr(base + from, Int32(n[0]), last - from + 1) else { return nil }
                let at = base.distance(to: UnsafeRawPointer(hit))
                if memcmp(base + at, n.baseAddress!, n.count) == 0 { return at }
                from = at + 1
            }
            return nil
        }
    }

    static func stringValue(of key: String, in buffer: ByteBuffer) -> [UInt8]? {
        let needle = Array("\"\(key)\":\"".utf8)
        return buffer.withUnsafeReadableBytes { haystack -> [UInt8]? in
            guard let at = firstIndex(of: needle, in: haystack) else { return nil }
            var i = at + needle.count
            var out: [UInt8] = []
            out.reserveCapacity(400)
            while i < haystack.count {
                let b = haystack[i]
                if b == UInt8(ascii: "\"") { return out }
                if b == UInt8(ascii: "\\") {
                    i += 1
                    guard i < haystack.count else { return nil }
                    switch haystack[i] {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(haystack[i])
                    default: return nil
                    }
                } else {
                    out.append(b)
                }
                i += 1
            }
            return nil
        }
    }
}
