import Foundation
import LiveProtocol
import LiveSim
import NIOCore
import NIOHTTP1
import NIOPosix
import TestSupport

/// One MSNP8-18 reply as the tests read it: a line, and for the commands that carry one (`GCF`,
/// `MSG`), the payload whose length ends the line.
struct ClassicReply: CustomStringConvertible, Sendable {
    var line: String
    var payload: String?

    var fields: [String] { line.split(separator: " ").map(String.init) }
    var name: String { fields.first ?? "" }
    var description: String { line }

    static let payloadCommands: Set<String> = ["GCF", "MSG", "UBX", "NOT", "IPG"]

    /// Reads the replies in `bytes`, in order; the rest is returned when one is incomplete.
    static func parseAll(_ bytes: [UInt8]) -> (replies: [ClassicReply], rest: [UInt8]) {
        var replies: [ClassicReply] = []
        var rest = bytes[...]
        while let cr = rest.indices.first(where: { rest[$0] == 13 && $0 + 1 < rest.endIndex && rest[$0 + 1] == 10 }) {
            let line = String(decoding: rest[rest.startIndex..<cr], as: UTF8.self)
            let fields = line.split(separator: " ")
            let start = cr + 2
            if let name = fields.first, payloadCommands.contains(String(name)), let length = Int(fields.last ?? "") {
                guard rest.endIndex - start >= length else { break }
                replies.append(
                    ClassicReply(
                        line: line, payload: String(decoding: rest[start..<(start + length)], as: UTF8.self)))
                rest = rest[(start + length)...]
            } else {
                replies.append(ClassicReply(line: line))
                rest = rest[start...]
            }
        }
        return (replies, Array(rest))
    }
}

/// A line-oriented MSNP connection over TCP.
final class ClassicConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer: [UInt8] = []
    private var pending: [ClassicReply] = []

    init(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
    }

    func send(_ line: String) async throws { try await outbound.write(ByteBuffer(string: line + "\r\n")) }

    /// The next reply, or nil once the server has closed the connection.
    func read() async throws -> ClassicReply? {
        while pending.isEmpty {
            guard let chunk = try await inbound.next() else { return nil }
            buffer += Array(chunk.readableBytesView)
            let (replies, rest) = ClassicReply.parseAll(buffer)
            pending += replies
            buffer = rest
        }
        return pending.removeFirst()
    }
}

/// Opens a TCP connection to the notification server for the duration of `body`.
func withClassic<R: Sendable>(port: Int, _ body: (ClassicConnection) async throws -> R) async throws -> R {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: "127.0.0.1", port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await body(ClassicConnection(inbound, outbound))
    }
}

/// What a test sends in the second `USR`, given the nonce or challenge the server sent.
struct USRScript {
    var version = 18
    var login = "alice@example.com"
    var method = "SSO"
    /// The arguments after `USR 4 <method> S`, from the server's `USR 3 <method> S` arguments.
    var answer: @Sendable ([String]) -> [String]
}

/// The replies of a whole USR login (VER, CVR, USR I, USR S), stopping at the first error, and
/// whether the server closed the connection after the last one.
func classicLogin(port: Int, _ script: USRScript) async throws -> (replies: [ClassicReply], closed: Bool) {
    try await withClassic(port: port) { connection in
        var replies: [ClassicReply] = []
        func exchange(_ line: String) async throws -> ClassicReply? {
            try await connection.send(line)
            guard let reply = try await connection.read() else { return nil }
            replies.append(reply)
            return Int(reply.name) == nil ? reply : nil
        }
        func done(_ replies: [ClassicReply]) async throws -> ([ClassicReply], Bool) {
            (replies, Int(replies.last?.name ?? "") != nil ? try await connection.read() == nil : false)
        }
        guard try await exchange("VER 1 MSNP\(script.version) CVR0") != nil,
            try await exchange("CVR 2 0x0409 winnt 5.1 i386 MSNMSGR 8.5.1302 msmsgs \(script.login)") != nil,
            var challenge = try await exchange("USR 3 \(script.method) I \(script.login)")
        else { return try await done(replies) }
        if challenge.name == "GCF" {
            guard let next = try await connection.read() else { return (replies, true) }
            replies.append(next)
            challenge = next
        }
        let given = Array(challenge.fields.dropFirst(4))
        let line = (["USR", "4", script.method, "S"] + script.answer(given)).joined(separator: " ")
        _ = try await exchange(line)
        return try await done(replies)
    }
}

/// A test's own reading of one RST.srf answer, token by token.
struct RSTReplyToken {
    var address: String
    var tokenType: String
    /// `Compact<N>` or `BinaryDAToken<N>`.
    var id: String
    /// The BinarySecurityToken text, unescaped (`t=...&p=`), or the CipherValue.
    var value: String
    var binarySecret: String?
    var created: String?
    var expires: String?

    static func parse(_ body: String) -> [RSTReplyToken] {
        body.components(separatedBy: "<wst:RequestSecurityTokenResponse>").dropFirst().map { chunk in
            func text(_ name: String) -> String? { element(name, in: chunk) }
            let idRange = chunk.range(of: #"Id=""#)
            let id = idRange.map { String(chunk[$0.upperBound...].prefix { $0 != "\"" }) } ?? ""
            let value = text("wsse:BinarySecurityToken") ?? text("CipherValue") ?? ""
            return RSTReplyToken(
                address: text("wsa:Address") ?? "", tokenType: text("wst:TokenType") ?? "", id: id,
                value: value.replacingOccurrences(of: "&amp;", with: "&"), binarySecret: text("wst:BinarySecret"),
                created: text("wsu:Created"), expires: text("wsu:Expires"))
        }
    }
}

/// The usual WLM 2009 request: Passport.NET/tb and five sites, RST0...RST5.
let wlmSites = [
    ("http://Passport.NET/tb", ""), ("messengerclear.live.com", "MBI_KEY_OLD"), ("messenger.msn.com", "?id=507"),
    ("contacts.msn.com", "MBI"), ("messengersecure.live.com", "MBI_SSL"), ("storage.msn.com", "MBI"),
]

/// An RST request with explicit Ids and policies; `password` is put in as given (already escaped).
func rstRequest(
    username: String = "alice@example.com", password: String = "correct horse", sites: [(String, String)],
    ids: [Int]? = nil
) -> String {
    let tokens = sites.enumerated().map { index, site in
        let policy = site.1.isEmpty ? "" : #"<wsse:PolicyReference URI="\#(site.1)"></wsse:PolicyReference>"#
        return """
            <wst:RequestSecurityToken Id="RST\(ids?[index] ?? index)"><wst:RequestType>http://schemas.xmlsoap.org/ws/2004/04/security/trust/Issue</wst:RequestType>\
            <wsp:AppliesTo><wsa:EndpointReference><wsa:Address>\(site.0)</wsa:Address></wsa:EndpointReference></wsp:AppliesTo>\
            \(policy)</wst:RequestSecurityToken>
            """
    }.joined()
    return """
        <Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:wsse="http://schemas.xmlsoap.org/ws/2003/06/secext" \
        xmlns:wsp="http://schemas.xmlsoap.org/ws/2002/12/policy" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/03/addressing" \
        xmlns:wst="http://schemas.xmlsoap.org/ws/2004/04/trust" xmlns:ps="http://schemas.microsoft.com/Passport/SoapServices/PPCRL">
        <Header><ps:AuthInfo Id="PPAuthInfo"><ps:HostingApp>{7108E71A-9926-4FCB-BCC9-9A9D3F32E423}</ps:HostingApp>\
        <ps:BinaryVersion>4</ps:BinaryVersion><ps:UIVersion>1</ps:UIVersion><ps:Cookies></ps:Cookies>\
        <ps:RequestParams>AQAAAAIAAABsYwQAAAAxMDMz</ps:RequestParams></ps:AuthInfo>\
        <wsse:Security><wsse:UsernameToken Id="user"><wsse:Username>\(username)</wsse:Username>\
        <wsse:Password>\(password)</wsse:Password></wsse:UsernameToken></wsse:Security></Header>
        <Body><ps:RequestMultipleSecurityTokens Id="RSTS">\(tokens)</ps:RequestMultipleSecurityTokens></Body></Envelope>
        """
}

extension LiveSimFixture {
    /// RST.srf's tokens for the WLM 2009 sites (or `sites`).
    func rstTokens(
        username: String = "alice@example.com", password: String = "correct horse",
        sites: [(String, String)] = wlmSites, path: String = "/RST.srf"
    ) async throws -> [RSTReplyToken] {
        let response = try await request(
            .POST, path, headers: [("Content-Type", "text/xml")],
            body: rstRequest(username: username, password: password, sites: sites))
        return RSTReplyToken.parse(response.body)
    }

    /// A Passport 1.4 sign-in: the nexus, then the DALogin it names.
    func passport14(login: String = "alice@example.com", password: String = "correct horse") async throws
        -> TestResponse
    {
        let nexus = try await request(.GET, "/rdr/pprdr.asp")
        let urls = nexus.header("PassportURLs") ?? ""
        let daLogin = urls.split(separator: ",").first { $0.hasPrefix("DALogin=") }.map { $0.dropFirst(8) } ?? ""
        let escape = { (text: String) in formEncode([("", text)]).dropFirst() }
        return try await request(
            .GET, "https://\(daLogin)",
            headers: [
                (
                    "Authorization",
                    "Passport1.4 OrgVerb=GET,OrgURL=http%3A%2F%2Fmessenger%2Emsn%2Ecom,sign-in=\(escape(login)),pwd=\(escape(password)),ct=1,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"
                ), ("User-Agent", "MSMSGS"),
            ])
    }
}

/// The ticket between the quotes after `from-PP=`.
func fromPP(_ response: TestResponse) -> String? {
    guard let info = response.header("Authentication-Info"), let start = info.range(of: "from-PP='") else {
        return nil
    }
    return String(info[start.upperBound...].prefix { $0 != "'" })
}

/// The broker's MBI_KEY_OLD proof for a base64 BinarySecret and a nonce, with a random IV.
func brokerProof(secret: String, nonce: String) -> String {
    let key = Array(Data(base64Encoded: secret) ?? Data())
    let iv = (0..<8).map { _ in UInt8.random(in: 0...255) }
    return (try? MBIKeyOldProof.proof(key: key, nonce: Array(nonce.utf8), iv: iv)) ?? "-"
}
