import BrokerCore
import Foundation
import LiveSim
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport

/// One command as the tests read it (their own reader: livesim's parser is not used here).
struct MSNPReply: CustomStringConvertible, Sendable {
    var fields: [String]
    var headers: [String: String]
    var body: String

    var name: String { fields.first ?? "" }
    var trid: String { fields.count > 1 ? fields[1] : "" }
    var line: String { fields.joined(separator: " ") }
    var description: String { line }
    var isError: Bool { Int(name) != nil }
    var errorCode: Int? { Int(name) }

    /// The text of the first `<name>` element of the body.
    func element(_ name: String) -> String? {
        guard let open = body.range(of: "<\(name)>"),
            let close = body.range(of: "</\(name)>", range: open.upperBound..<body.endIndex)
        else { return nil }
        return String(body[open.upperBound..<close.lowerBound])
    }

    /// Reads the replies in `bytes`, in order; the rest is returned when a command is incomplete.
    static func parseAll(_ bytes: [UInt8]) -> (replies: [MSNPReply], rest: [UInt8]) {
        var replies: [MSNPReply] = []
        var rest = bytes[...]
        while let cr = rest.indices.first(where: { rest[$0] == 13 && $0 + 1 < rest.endIndex && rest[$0 + 1] == 10 }) {
            let fields = String(decoding: rest[rest.startIndex..<cr], as: UTF8.self).split(separator: " ").map(
                String.init)
            let length = Int(fields.last ?? "") ?? 0
            let start = cr + 2
            guard rest.endIndex - start >= length else { break }
            let payload = String(decoding: rest[start..<(start + length)], as: UTF8.self)
            var headers: [String: String] = [:]
            var body = payload
            if let blank = payload.range(of: "\r\n\r\n")
                ?? (payload.hasPrefix("\r\n") ? payload.range(of: "\r\n") : nil)
            {
                for line in payload[..<blank.lowerBound].components(separatedBy: "\r\n") where !line.isEmpty {
                    let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                    headers[parts[0]] = parts.count > 1 ? parts[1] : ""
                }
                body = String(payload[blank.upperBound...])
            }
            replies.append(MSNPReply(fields: fields, headers: headers, body: body))
            rest = rest[(start + length)...]
        }
        return (replies, Array(rest))
    }
}

/// Frames a client command: `CMD TRID TARGET LENGTH\r\n`, headers, a blank line, the body.
func msnp(_ name: String, _ trid: Int, _ target: String, body: String, headers: [(String, String)] = []) -> [UInt8] {
    let payload = Array((headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n" + body).utf8)
    return Array("\(name) \(trid) \(target) \(payload.count)\r\n".utf8) + payload
}

let connectBody =
    "<connect><ver>2</ver><agent><os>winnt</os><osVer>5.2</osVer><proc>x86</proc><lcid>en-us</lcid></agent></connect>"
let msgrBody = """
    <msgr><ver>2</ver><altVersions><ver>1</ver></altVersions><client><name>Skype</name><ver>0/6.16.0.105/259/</ver>\
    </client><epid>EB80C4E5-10DC-11D2-8C04-00A0C94C5D75</epid></msgr>
    """

/// An MSNP connection over TCP to livesim's notification server.
final class MSNPConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer: [UInt8] = []
    private var pending: [MSNPReply] = []

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    func send(_ bytes: [UInt8]) async throws { try await outbound.write(ByteBuffer(bytes: bytes)) }

    /// The next reply, or nil once the server has closed the connection.
    func read() async throws -> MSNPReply? {
        while pending.isEmpty {
            guard let chunk = try await inbound.next() else { return nil }
            buffer += Array(chunk.readableBytesView)
            let (replies, rest) = MSNPReply.parseAll(buffer)
            pending += replies
            buffer = rest
        }
        return pending.removeFirst()
    }

    func exchange(_ bytes: [UInt8]) async throws -> MSNPReply? {
        try await send(bytes)
        return try await read()
    }
}

/// Opens a TCP connection to the notification server for the duration of `body`.
func withMSNP<R: Sendable>(port: Int, _ body: (MSNPConnection) async throws -> R) async throws -> R {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await body(MSNPConnection(inbound, outbound))
    }
}

/// The gateway, driven with the fixture's HTTPS client.
struct GatewayClient {
    let sim: LiveSimFixture
    var headers: [(String, String)]
    var sessionID: String?
    /// `X-MSN-Messenger` of the last answer.
    var messenger: String?
    var lastStatus = 0

    init(sim: LiveSimFixture, cookies: String? = nil, useCookie: Bool = true) {
        self.sim = sim
        var headers = [("Content-Type", "application/x-msn-messenger")]
        if useCookie { headers.append(("X-MSN-Auth", "Use-Cookie")) }
        if let cookies { headers.append(("Cookie", cookies)) }
        self.headers = headers
    }

    /// Posts commands (opening the session on the first call) and returns every reply.
    mutating func post(_ bytes: [UInt8], action: String? = nil) async throws -> [MSNPReply] {
        var query = sessionID.map { "SessionID=\($0)" } ?? "Action=open&Server=NS&IP=messenger.hotmail.com"
        if let action { query += "&Action=\(action)" }
        let response = try await sim.request(
            .POST, "/gateway/gateway.dll?" + query, headers: headers,
            body: String(decoding: bytes, as: UTF8.self))
        lastStatus = response.status
        messenger = response.header("X-MSN-Messenger")
        if let messenger, let range = messenger.range(of: "SessionID=") {
            sessionID = String(messenger[range.upperBound...].prefix { $0 != ";" })
        }
        return MSNPReply.parseAll(Array(response.body.utf8)).replies
    }

    mutating func exchange(_ bytes: [UInt8]) async throws -> MSNPReply? { try await post(bytes).first }
}

/// How a test deviates from a correct login after ATH.
struct LoginScript {
    var ath: String
    /// The challenge answer sent for the server's nonce.
    var answer: @Sendable (String) -> String = { Challenge.answer(nonce: $0) }
    var appID = Challenge.defaultProductID
    /// The Registration header sent for the one given; nil leaves it out.
    var registration: @Sendable (String) -> String? = { $0 }
    /// When set, the ATH body is made from the CNT answer's `<nonce>` instead of `ath`.
    var athForNonce: (@Sendable (String) -> String)? = nil
}

/// Walks the seed's exchange with `exchange` (one command in, one reply out) and returns the
/// replies, stopping after the first error.
func runLogin(_ script: LoginScript, _ exchange: ([UInt8]) async throws -> MSNPReply?) async throws -> [MSNPReply] {
    var replies: [MSNPReply] = []
    func step(_ bytes: [UInt8]) async throws -> MSNPReply? {
        guard let reply = try await exchange(bytes) else { return nil }
        replies.append(reply)
        return reply.isError ? nil : reply
    }
    guard let cnt = try await step(msnp("CNT", 1, "CON", body: connectBody)) else { return replies }
    let ath = script.athForNonce.map { $0(cnt.element("nonce") ?? "") } ?? script.ath
    let athPayload = Array(("\r\n" + ath).utf8)
    guard try await step(Array("ATH 2 CON\\USER \(athPayload.count)\r\n".utf8) + athPayload) != nil else {
        return replies
    }
    guard let bnd = try await step(msnp("BND", 3, "CON\\MSGR", body: msgrBody)),
        let nonce = bnd.element("nonce"), let given = bnd.headers["Set-Registration"]
    else { return replies }
    let challenge = "<challenge><appId>\(script.appID)</appId><response>\(script.answer(nonce))</response></challenge>"
    let headers = script.registration(given).map { [("Registration", $0)] } ?? []
    _ = try await step(msnp("PUT", 4, "MSGR\\CHALLENGE", body: challenge, headers: headers))
    return replies
}

/// Login over TCP; also reports whether the server closed the connection after the last reply.
func tcpLogin(_ sim: LiveSimFixture, _ script: LoginScript) async throws -> (replies: [MSNPReply], closed: Bool) {
    let port = try requireNSPort(sim)
    return try await withMSNP(port: port) { connection in
        let replies = try await runLogin(script) { try await connection.exchange($0) }
        let closed = replies.last?.isError == true ? try await connection.read() == nil : false
        return (replies, closed)
    }
}

struct NoNSListener: Error {}

func requireNSPort(_ sim: LiveSimFixture) throws -> Int {
    guard let port = sim.server.nsPort else { throw NoNSListener() }
    return port
}
