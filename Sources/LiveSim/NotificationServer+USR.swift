import Foundation

/// The `USR` login methods of MSNP8-18, by the names the counters use.
enum NSUSRMethod: String, Sendable, Codable, CaseIterable {
    /// MSNP15-18: an RST.srf messengerclear.live.com ticket and the MBI_KEY_OLD proof.
    case sso
    /// MSNP8-14: a Passport 1.4 ticket from the DALogin.
    case twn
}

/// The MSNP8-18 login of one notification-server session, chosen when the first command is `VER`:
///
///     VER 1 MSNP18 MSNP17 CVR0          -> VER 1 MSNP18 CVR0       (the highest of 8...18 offered)
///     CVR 2 0x0409 winnt ... alice@...  -> CVR 2 <versions and URLs>  (optional)
///     USR 3 SSO I alice@example.com     -> GCF 0 <len> (MSNP13+), USR 3 SSO S MBI_KEY_OLD <nonce>
///     USR 4 SSO S <t=...&p=> <proof> {guid}  -> USR 4 OK alice@example.com 1 0
///
///     USR 3 TWN I alice@example.com     -> GCF 0 <len> (MSNP13+),
///                                          USR 3 TWN S ct=<unix time>,rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1
///     USR 4 TWN S <t=...&p=...>         -> USR 4 OK alice@example.com 1 0
///                                          (MSNP8-9: USR 4 OK alice@example.com <friendly name> 1 0)
///
/// SSO is served to MSNP15-18 and TWN to MSNP8-14. SSO wants a messengerclear.live.com ticket that
/// RST.srf issued for the login, unexpired, sent as `t=...&p=` exactly (unescaped); a proof of the
/// nonce sent on this connection keyed with the BinarySecret issued with that ticket (the live
/// service wanted it at MSNP15 too, so livesim does); and from MSNP16 on a machine guid in braces.
/// TWN wants an unexpired Passport 1.4 ticket from `/login2.srf` for the login. A refusal is
/// `911 <trid>` and a close, as Escargot does; a command out of place is `715 <trid>` and a close.
/// After `USR OK`, `PNG` gets `QNG 50` and `OUT` ends the session.
struct USRSession {
    enum Phase { case version, authenticate, challenged, loggedIn, closed }

    static let versionCommand = Array("VER ".utf8)
    static let versions = 8...18
    static let maxLine = 8192
    static let shields =
        #"<?xml version="1.0" encoding="utf-8" ?><config><shield><cli maj="7" min="0" minbld="0" maxbld="9999" deny=" " /></shield><block></block></config>"#

    private(set) var phase = Phase.version
    private(set) var version: Int?
    private(set) var method: NSUSRMethod?
    private(set) var account: String?
    /// The login named in `USR t <method> I <login>`.
    private var login: String?
    /// The MBI_KEY_OLD nonce sent on this connection.
    private(set) var nonce: String?
    private var buffer: [UInt8] = []

    mutating func receive(_ bytes: [UInt8], transport: NSSession.Transport, state: SimState, now: Date)
        -> NSSession.Output
    {
        var out = NSSession.Output()
        buffer += bytes
        var offset = 0
        while phase != .closed {
            let rest = buffer[offset...]
            guard let newline = rest.firstIndex(of: 10) else {
                if rest.count > Self.maxLine { refuse(715, trid: 0, command: "-", reason: "line too long", into: &out) }
                break
            }
            offset = newline + 1
            let end = newline > rest.startIndex && buffer[newline - 1] == 13 ? newline - 1 : newline
            guard newline - rest.startIndex <= Self.maxLine,
                let line = String(validating: buffer[rest.startIndex..<end], as: UTF8.self)
            else {
                refuse(715, trid: 0, command: "-", reason: "unreadable line", into: &out)
                break
            }
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= 2, fields[0].count == 3, let trid = Int(fields[1]), trid >= 0 else {
                refuse(715, trid: 0, command: fields.first ?? "-", reason: "expected CMD TRID ...", into: &out)
                break
            }
            handle(fields, trid: trid, state: state, now: now, into: &out)
        }
        buffer = phase == .closed ? [] : Array(buffer[offset...])
        out.close = phase == .closed
        return out
    }

    private mutating func handle(
        _ fields: [String], trid: Int, state: SimState, now: Date, into out: inout NSSession.Output
    ) {
        let name = fields[0]
        let args = Array(fields.dropFirst(2))
        switch (phase, name) {
        case (.version, "VER"):
            let offered = args.compactMap { $0.hasPrefix("MSNP") ? Int($0.dropFirst(4)) : nil }
            guard let chosen = offered.filter(Self.versions.contains).max() else {
                send("VER \(trid) 0", command: name, trid: trid, into: &out)
                phase = .closed
                return
            }
            version = chosen
            send("VER \(trid) MSNP\(chosen) CVR0", command: name, trid: trid, into: &out)
            phase = .authenticate
        case (.authenticate, "CVR"):
            send(
                "CVR \(trid) 8.5.1302 8.5.1302 8.1.0178 http://msgr.dlservice.microsoft.com http://messenger.msn.com",
                command: name, trid: trid, into: &out)
        case (.authenticate, "USR"):
            guard args.count == 3, args[1] == "I", !args[2].isEmpty, let version else {
                return refuse(911, trid: trid, command: name, reason: "expected USR t <method> I <login>", into: &out)
            }
            guard let method = NSUSRMethod(rawValue: args[0].lowercased()) else {
                return refuse(911, trid: trid, command: name, reason: "unknown method \(args[0])", into: &out)
            }
            self.method = method
            login = args[2]
            switch (method, version) {
            case (.sso, 15...), (.twn, ..<15): break
            default:
                return refuse(
                    911, trid: trid, command: name, reason: "\(args[0]) is not served at MSNP\(version)", state: state,
                    into: &out)
            }
            if version >= 13 {
                let payload = Array(Self.shields.utf8)
                out.bytes += Array("GCF 0 \(payload.count)\r\n".utf8) + payload
            }
            switch method {
            case .sso:
                let nonce = Data(TokenFactory.randomBytes(48)).base64EncodedString()
                self.nonce = nonce
                send("USR \(trid) SSO S MBI_KEY_OLD \(nonce)", command: name, trid: trid, into: &out)
            case .twn:
                let challenge = "ct=\(Int(now.timeIntervalSince1970)),rver=1,wp=FS_40SEC_0_COMPACT,lc=1,id=1"
                send("USR \(trid) TWN S \(challenge)", command: name, trid: trid, into: &out)
            }
            phase = .challenged
        case (.challenged, "USR"):
            guard let method, let login, let version, args.first?.lowercased() == method.rawValue, args.count >= 2,
                args[1] == "S"
            else {
                return refuse(
                    715, trid: trid, command: name, reason: "expected USR t <method> S ...", state: state, into: &out)
            }
            let result =
                method == .sso
                ? Self.checkSSO(args, login: login, nonce: nonce ?? "", version: version, state: state, now: now)
                : Self.checkTWN(args, login: login, state: state, now: now)
            switch result {
            case .failure(let refusal):
                refuse(911, trid: trid, command: name, reason: refusal.reason, state: state, into: &out)
            case .success(let key):
                account = key
                // MSNP8-9 put the (URL-encoded) friendly name and the verified flag after the login.
                let friendly = version <= 9 ? " \(Form.escape(login))" : ""
                send("USR \(trid) OK \(login)\(friendly) 1 0", command: name, trid: trid, into: &out)
                state.withLock { $0.counters.nsUSRLogins[method.rawValue, default: NSLoginCount()].success += 1 }
                phase = .loggedIn
            }
        case (.loggedIn, "PNG"):
            send("QNG 50", command: name, trid: trid, into: &out)
        case (.loggedIn, "OUT"):
            out.events.append(
                NSSession.Event(command: name, trid: trid, reply: "-", method: method?.rawValue, account: account))
            phase = .closed
        default:
            refuse(715, trid: trid, command: name, reason: "unexpected \(name)", state: state, into: &out)
        }
    }

    private func send(_ line: String, command: String, trid: Int, into out: inout NSSession.Output) {
        out.bytes += Array((line + "\r\n").utf8)
        out.events.append(
            NSSession.Event(
                command: command, trid: trid, reply: String(line.prefix { $0 != " " }), method: method?.rawValue,
                account: account))
    }

    /// Sends `CODE TRID`, closes, and counts a failure for the method once one was named.
    private mutating func refuse(
        _ code: Int, trid: Int, command: String, reason: String, state: SimState? = nil,
        into out: inout NSSession.Output
    ) {
        out.bytes += Array("\(code) \(trid)\r\n".utf8)
        out.events.append(
            NSSession.Event(
                command: command, trid: trid, reply: String(code), method: method?.rawValue, account: account,
                reason: reason))
        if let method, let state, phase != .loggedIn {
            state.withLock { $0.counters.nsUSRLogins[method.rawValue, default: NSLoginCount()].failure += 1 }
        }
        phase = .closed
    }

    // MARK: - Checks

    /// `USR t SSO S <ticket> <proof> [{guid}]`: the account the ticket belongs to, or why not.
    static func checkSSO(_ args: [String], login: String, nonce: String, version: Int, state: SimState, now: Date)
        -> Result<String, NSSession.Refusal>
    {
        func refusal(_ reason: String) -> Result<String, NSSession.Refusal> {
            .failure(NSSession.Refusal(code: 911, method: nil, reason: reason))
        }
        guard (4...5).contains(args.count) else { return refusal("expected USR t SSO S <ticket> <proof> [{guid}]") }
        let (ticket, proof) = (args[2], args[3])
        let guid = args.count == 5 ? args[4] : nil
        if version >= 16, guid == nil { return refusal("MSNP\(version) needs the machine guid") }
        if let guid {
            guard guid.hasPrefix("{"), guid.hasSuffix("}"), UUID(uuidString: String(guid.dropFirst().dropLast())) != nil
            else { return refusal("the machine guid is not {XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}") }
        }
        guard ticket.hasPrefix("t="), ticket.hasSuffix("&p="), ticket.count > 5 else {
            return refusal("the ticket is not t=...&p= (unescaped)")
        }
        let value = String(ticket.dropFirst(2).dropLast(3))
        let checked = state.withLock { world -> Result<(String, String), NSSession.Refusal> in
            guard let issued = world.credentials[value] else {
                return .failure(.init(code: 911, reason: "ticket not issued by livesim"))
            }
            guard issued.kind == .ticket, issued.scope?.lowercased() == IdentityProvider.messengerClear,
                let secret = issued.binarySecret
            else {
                return .failure(
                    .init(
                        code: 911, reason: "the ticket is for \(issued.scope ?? "no site"), not messengerclear.live.com"
                    ))
            }
            if let reason = world.invalidReason(issued, now: now) {
                return .failure(.init(code: 911, reason: "ticket \(reason)"))
            }
            guard issued.login == SimWorld.key(login) else {
                return .failure(.init(code: 911, reason: "the ticket belongs to another account"))
            }
            return .success((issued.login, secret))
        }
        switch checked {
        case .failure(let refusal): return .failure(refusal)
        case .success(let (key, secret)):
            if let failure = SSOProofVerifier.check(proof: proof, binarySecret: secret, nonce: nonce) {
                return refusal("proof refused: \(failure)")
            }
            return .success(key)
        }
    }

    /// `USR t TWN S <ticket>`: the account the Passport 1.4 ticket belongs to, or why not.
    static func checkTWN(_ args: [String], login: String, state: SimState, now: Date) -> Result<
        String, NSSession.Refusal
    > {
        guard args.count == 3 else {
            return .failure(NSSession.Refusal(code: 911, reason: "expected USR t TWN S <ticket>"))
        }
        return state.withLock { world in
            guard let issued = world.credentials[args[2]], issued.kind == .passportTicket else {
                return .failure(NSSession.Refusal(code: 911, reason: "not a Passport 1.4 ticket issued by livesim"))
            }
            if let reason = world.invalidReason(issued, now: now) {
                return .failure(NSSession.Refusal(code: 911, reason: "ticket \(reason)"))
            }
            guard issued.login == SimWorld.key(login) else {
                return .failure(NSSession.Refusal(code: 911, reason: "the ticket belongs to another account"))
            }
            return .success(issued.login)
        }
    }
}
