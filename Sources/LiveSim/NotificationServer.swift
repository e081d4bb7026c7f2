import Foundation
import Logging
import NIOCore
import NIOPosix

/// The ways a client can authenticate in `ATH CON\USER`, by the names the counters use.
enum NSLoginMethod: String, Sendable, Codable, CaseIterable {
    case sslCompactTicket = "ssl-compact-ticket"
    case sslCompactTicketUIC = "ssl-compact-ticket-uic"
    case webCompactTicket = "web-compact-ticket"
    /// `<ssl-compact-ticket>` with SkyLogin credentials as `<uic>` and the Skype name as `<alias>`.
    case sslCompactTicketSkyLogin = "ssl-compact-ticket-skylogin"
    /// `<uic>` signed by the client over the CNT nonce, and the Skype name as `<id>`.
    case skypeUIC = "skype-uic"
}

/// Successes and failures of one login method.
struct NSLoginCount: Codable, Equatable {
    var success = 0
    var failure = 0
}

/// One notification-server session: the MSNP24 login exchange of the seed's flowchart,
///
///     CNT 1 CON        -> CNT 1 CON   <connect-response> with a nonce
///     ATH 2 CON\USER   -> ATH 2 CON   <auth-response>, once the credential checks out
///     BND 3 CON\MSGR   -> BND 3 CON   Set-Registration, Context, <msgr-response> with a nonce
///     PUT 4 MSGR\CHALLENGE (Registration header, the challenge answer)
///                      -> ATH 0 CON   Context, <auth-response>: logged in
///
/// Refusals close the session: 911 for a bad or missing credential, 540 for a wrong challenge
/// answer or Registration, 715 for a malformed or unexpected command. A session whose first command
/// is `VER` speaks the MSNP8-18 login instead (`USRSession`). The same type serves the TCP listener
/// and the HTTP gateway; it is not thread-safe, its owner serializes access.
struct NSSession {
    enum Phase { case connect, authenticate, bind, challenge, loggedIn, closed }

    /// Where the commands came from; the gateway passes the HTTP request's cookies.
    enum Transport {
        case tcp
        case gateway(cookies: [String: String], useCookie: Bool)

        var name: String {
            switch self {
            case .tcp: "tcp"
            case .gateway: "gateway"
            }
        }
    }

    /// One command and what became of it, for the log (never a secret).
    struct Event {
        var command: String
        var trid: Int
        var reply: String
        /// The login method's counter name (`ssl-compact-ticket`, `sso`...).
        var method: String?
        var account: String?
        var reason: String?
    }

    struct Output {
        var bytes: [UInt8] = []
        var close = false
        var events: [Event] = []
    }

    private(set) var phase = Phase.connect
    private(set) var method: NSLoginMethod?
    private(set) var account: String?
    private var buffer: [UInt8] = []
    /// Set when the first command is `VER`: the session speaks MSNP8-18 (`USR TWN`/`USR SSO`) instead.
    private var usr: USRSession?
    private var registration: String?
    private var contextID: String?
    private var nonce: String?
    /// The `<nonce>` of this session's CNT answer, which a `skype-uic` UIC must be signed over.
    private(set) var connectNonce: String?

    static let authResponse =
        "<auth-response><new-thread-allowed>false</new-thread-allowed><p2p-migration-allowed>false</p2p-migration-allowed></auth-response>"

    /// Takes bytes from the client and returns the server's replies; once `close` is set the
    /// session takes nothing more.
    mutating func receive(_ bytes: [UInt8], transport: Transport, state: SimState, now: Date = Date()) -> Output {
        var out = Output()
        guard phase != .closed else {
            out.close = true
            return out
        }
        buffer += bytes
        if usr == nil, phase == .connect, buffer.starts(with: USRSession.versionCommand) { usr = USRSession() }
        if var session = usr {
            out = session.receive(buffer, transport: transport, state: state, now: now)
            buffer = []
            usr = session
            account = session.account
            if out.close { phase = .closed }
            return out
        }
        var offset = 0
        while phase != .closed {
            switch MSNPFrame.parse(buffer[offset...]) {
            case .incomplete:
                buffer.removeFirst(offset)
                return out
            case .malformed(let trid, let reason):
                refuse(715, trid: trid, command: "-", reason: reason, state: state, into: &out)
            case .command(let command, let consumed):
                offset += consumed
                handle(command, transport: transport, state: state, now: now, into: &out)
            }
        }
        buffer = []
        out.close = true
        return out
    }

    private mutating func handle(
        _ command: MSNPCommand, transport: Transport, state: SimState, now: Date, into out: inout Output
    ) {
        switch (phase, command.name, command.target.uppercased()) {
        case (.connect, "CNT", "CON"):
            if case .failure(let refusal) = XMLReader.payload(command.body, "connect") {
                return refuse(715, command: command, reason: "CNT: \(refusal)", state: state, into: &out)
            }
            let nonce = UUID().uuidString.lowercased()
            connectNonce = nonce
            reply(
                MSNPCommand(
                    name: "CNT", trid: command.trid, target: "CON",
                    body:
                        "<connect-response><ver>2</ver><qostest>false</qostest><nonce>\(nonce)</nonce></connect-response>"
                ),
                to: command, into: &out)
            phase = .authenticate
        case (.authenticate, "ATH", "CON\\USER"):
            switch Self.authenticate(
                command.body, transport: transport, state: state, now: now, connectNonce: connectNonce)
            {
            case .failure(let refusal):
                method = refusal.method
                refuse(refusal.code, command: command, reason: refusal.reason, state: state, into: &out)
            case .success(let (method, login)):
                self.method = method
                account = login
                reply(
                    MSNPCommand(name: "ATH", trid: command.trid, target: "CON", body: Self.authResponse), to: command,
                    into: &out)
                phase = .bind
            }
        case (.bind, "BND", "CON\\MSGR"):
            if case .failure(let refusal) = XMLReader.payload(command.body, "msgr") {
                return refuse(715, command: command, reason: "BND: \(refusal)", state: state, into: &out)
            }
            let registration = TokenFactory.base64(Int.random(in: 360...420))
            let contextID = TokenFactory.hex(8).uppercased()
            let nonce = String(Int.random(in: 1...9)) + (1..<28).map { _ in String(Int.random(in: 0...9)) }.joined()
            let utc = Int(now.timeIntervalSince1970)
            let lifetime = state.withLock { $0.settings.tokenLifetime }
            self.registration = registration
            self.contextID = contextID
            self.nonce = nonce
            reply(
                MSNPCommand(
                    name: "BND", trid: command.trid, target: "CON",
                    headers: [
                        ("UtcTime", String(utc)), ("Set-Registration", registration),
                        ("Registration-Token-Expiry", String(utc + lifetime)), ("Context", contextID),
                    ],
                    body:
                        "<msgr-response><ver>2</ver><utctime>\(utc)</utctime><nonce>\(nonce)</nonce><sample-window>0</sample-window></msgr-response>"
                ),
                to: command, into: &out)
            phase = .challenge
        case (.challenge, "PUT", "MSGR\\CHALLENGE"):
            guard let registration, let nonce, let contextID else {
                return refuse(715, command: command, reason: "no binding", state: state, into: &out)
            }
            if let reason = Self.checkChallenge(command, registration: registration, nonce: nonce) {
                return refuse(540, command: command, reason: reason, state: state, into: &out)
            }
            reply(
                MSNPCommand(
                    name: "ATH", trid: 0, target: "CON", headers: [("Context", contextID)], body: Self.authResponse),
                to: command, into: &out)
            if let method {
                state.withLock { $0.counters.nsLogins[method.rawValue, default: NSLoginCount()].success += 1 }
            }
            phase = .loggedIn
        case (.loggedIn, "OUT", _):
            out.events.append(
                Event(command: "OUT", trid: command.trid, reply: "-", method: method?.rawValue, account: account))
            phase = .closed
        default:
            refuse(
                715, command: command, reason: "unexpected \(command.name) \(command.target)", state: state, into: &out)
        }
    }

    private func reply(_ message: MSNPCommand, to command: MSNPCommand, into out: inout Output) {
        out.bytes += message.wire
        out.events.append(
            Event(
                command: command.name, trid: command.trid, reply: message.name, method: method?.rawValue,
                account: account))
    }

    private mutating func refuse(
        _ code: Int, command: MSNPCommand, reason: String, state: SimState, into out: inout Output
    ) {
        refuse(code, trid: command.trid, command: command.name, reason: reason, state: state, into: &out)
    }

    /// Sends the error, closes the session, and counts a failure for the method if one was tried.
    private mutating func refuse(
        _ code: Int, trid: Int, command: String, reason: String, state: SimState, into out: inout Output
    ) {
        out.bytes += MSNPCommand.error(code, trid: trid)
        out.events.append(
            Event(
                command: command, trid: trid, reply: String(code), method: method?.rawValue, account: account,
                reason: reason))
        if let method, phase != .loggedIn {
            state.withLock { $0.counters.nsLogins[method.rawValue, default: NSLoginCount()].failure += 1 }
        }
        phase = .closed
    }

    // MARK: - Checks

    struct Refusal: Error {
        var code: Int
        var method: NSLoginMethod?
        var reason: String
    }

    /// The account the `<user>` block authenticates, or why not.
    static func authenticate(
        _ body: String, transport: Transport, state: SimState, now: Date, connectNonce: String? = nil
    ) -> Result<(NSLoginMethod, String), Refusal> {
        let user: XMLReader.Element
        switch XMLReader.payload(body, "user") {
        case .success(let element): user = element
        case .failure(let refusal): return .failure(Refusal(code: 911, method: nil, reason: "ATH: \(refusal)"))
        }
        func text(_ name: String) -> String? { user.text(of: name) }
        let ticket = text("ssl-compact-ticket")
        let web = user.first(XMLNS.none, "web-compact-ticket") != nil
        if web, ticket == nil {
            return webCompactTicket(transport: transport, state: state, now: now)
        }
        if !web, let result = skyLogin(user: user, ticket: ticket, connectNonce: connectNonce, state: state, now: now) {
            return result
        }
        guard let ticket, !web else {
            return .failure(Refusal(code: 911, method: nil, reason: "no ssl-compact-ticket or web-compact-ticket"))
        }
        let uic = text("uic")
        let method: NSLoginMethod = uic == nil ? .sslCompactTicket : .sslCompactTicketUIC
        func refusal(_ reason: String) -> Result<(NSLoginMethod, String), Refusal> {
            .failure(Refusal(code: 911, method: method, reason: reason))
        }
        // t=VALUE, optionally followed by &p=...
        let parts = ticket.split(separator: "&", omittingEmptySubsequences: false)
        guard let first = parts.first, first.hasPrefix("t="), first.count > 2,
            parts.dropFirst().allSatisfy({ $0.hasPrefix("p=") })
        else {
            return refusal("ssl-compact-ticket is not t=...[&p=]")
        }
        let value = String(first.dropFirst(2))
        let site = text("ssl-site-name")
        if let site, site.lowercased() != "chatservice.live.com" {
            return refusal("ssl-site-name is not chatservice.live.com")
        }
        let id = text("id")
        return state.withLock { world in
            guard let issued = world.credentials[value] else { return refusal("ticket not issued by livesim") }
            switch (issued.kind, issued.scope?.lowercased()) {
            case (.ticket, "chatservice.live.com"):
                guard site != nil else { return refusal("a chatservice.live.com ticket needs <ssl-site-name>") }
            case (.accessToken, "service::ssl.live.com::mbi_ssl"):
                break
            default:
                return refusal("credential is a \(issued.kind.rawValue) for \(issued.scope ?? "no scope")")
            }
            if let reason = world.invalidReason(issued, now: now) { return refusal("ticket \(reason)") }
            if let id, SimWorld.key(id) != issued.login { return refusal("<id> names another account") }
            if let uic {
                guard let record = world.credentials[uic], record.kind == .uic else {
                    return refusal("UIC not issued by livesim")
                }
                if let reason = world.invalidReason(record, now: now) { return refusal("UIC \(reason)") }
                guard record.login == issued.login else { return refusal("UIC of another account") }
            }
            return .success((method, issued.login))
        }
    }

    private static func webCompactTicket(transport: Transport, state: SimState, now: Date) -> Result<
        (NSLoginMethod, String), Refusal
    > {
        let method = NSLoginMethod.webCompactTicket
        guard case .gateway(let cookies, let useCookie) = transport else {
            return .failure(
                Refusal(code: 911, method: method, reason: "web-compact-ticket is accepted only on the HTTP gateway"))
        }
        guard useCookie else {
            return .failure(Refusal(code: 911, method: method, reason: "no X-MSN-Auth: Use-Cookie header"))
        }
        guard let (login, _) = state.withLock({ $0.sessionAccount(cookies: cookies, now: now) }) else {
            return .failure(
                Refusal(code: 911, method: method, reason: "missing or invalid MSPAuth/MSPProf/WLSSC cookies"))
        }
        return .success((method, login))
    }

    /// Why a `PUT MSGR\CHALLENGE` is refused, or nil when its Registration and answer are right.
    static func checkChallenge(_ command: MSNPCommand, registration: String, nonce: String) -> String? {
        guard let given = command.header("Registration") else { return "no Registration header" }
        guard given == registration else { return "Registration is not the one this session was given" }
        let challenge: XMLReader.Element
        switch XMLReader.payload(command.body, "challenge") {
        case .success(let element): challenge = element
        case .failure(let refusal): return refusal.reason
        }
        func text(_ name: String) -> String? { challenge.text(of: name) }
        guard let appID = text("appId"), let productKey = NSChallenge.productKeys[appID] else { return "unknown appId" }
        guard let response = text("response") else { return "no <response>" }
        guard response.lowercased() == NSChallenge.answer(nonce: nonce, productID: appID, productKey: productKey) else {
            return "wrong challenge answer"
        }
        return nil
    }
}

extension NSSession.Event {
    func log(_ logger: Logger?, transport: String) {
        guard let logger else { return }
        var metadata: Logger.Metadata = [
            "transport": "\(transport)", "command": "\(command)", "trid": "\(trid)", "reply": "\(reply)",
        ]
        if let method { metadata["method"] = "\(method)" }
        if let account { metadata["account"] = "\(account)" }
        if let reason { metadata["reason"] = "\(reason)" }
        logger.info("ns", metadata: metadata)
    }
}

/// The notification server over plain TCP: one session per connection.
final class NSChannelHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let state: SimState
    private let logger: Logger?
    private var session = NSSession()
    private var closing = false

    init(state: SimState, logger: Logger?) {
        self.state = state
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        var buffer = unwrapInboundIn(data)
        let out = session.receive(buffer.readBytes(length: buffer.readableBytes) ?? [], transport: .tcp, state: state)
        for event in out.events { event.log(logger, transport: "tcp") }
        if !out.bytes.isEmpty {
            let written = context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: out.bytes)))
            let channel = context.channel
            if out.close { written.whenComplete { _ in channel.close(promise: nil) } }
        } else if out.close {
            context.close(promise: nil)
        }
        closing = out.close
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

enum NSListener {
    static func bind(group: any EventLoopGroup, host: String, port: Int, state: SimState, logger: Logger?) async throws
        -> any Channel
    {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NSChannelHandler(state: state, logger: logger))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}
