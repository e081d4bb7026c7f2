import BrokerCore
import Foundation
import LiveSim
import TestSupport

/// The daemon's configuration lines for a second realm, `revival`, that signs in the way
/// Escargot does: RST.srf and Passport 1.4 at livesim, with no OAuth.
func revivalRealm(base: String, caFile: String) -> String {
    """

    [realms.revival]
    sign_in = "rst"
    rst_url = "\(base)"
    ca_file = "\(caFile)"
    """
}

/// livesim (with its notification server) and a daemon with the `sim` OAuth realm and the
/// `revival` rst realm.
func withRevivalBroker(
    sim configure: @escaping (inout LiveSimConfiguration) -> Void = { _ in }, refresh: [String] = [],
    _ body: (LiveSimFixture, DaemonProcess) async throws -> Void
) async throws {
    try await withLiveSim({ config in
        config.nsHost = "127.0.0.1"
        configure(&config)
    }) { sim in
        let probe = try TemporaryDirectory()
        let ca = probe.file("revival-ca.pem")
        try sim.writeCA(to: ca)
        let daemon = try DaemonProcess(sim: sim, refresh: refresh, extra: revivalRealm(base: sim.base(), caFile: ca))
        do {
            try await daemon.start()
            try await body(sim, daemon)
        } catch {
            print("daemon log:\n" + daemon.log.suffix(4000))
            await daemon.shutdown()
            throw error
        }
        await daemon.shutdown()
        withExtendedLifetime(probe) {}
    }
}

/// One MSNP15-18 login at livesim's notification server with the broker's `sso` answer (or the
/// proof `tamper` makes of it); the server's last word: `USR 4 OK ...` or `911 4`.
func ssoLogin(
    _ sim: LiveSimFixture, _ daemon: DaemonProcess, account: String, login: String, version: Int,
    tamper: ((_ nonce: String, _ answer: [String: Any]) async throws -> String)? = nil
) async throws -> [String] {
    let ns = try NSClient(port: sim.server.nsPort!)
    try ns.send("VER 1 MSNP\(version) CVR0")
    let ver = try ns.await("VER")
    guard ver.count > 2, ver[2] == "MSNP\(version)" else { throw NSClientError("VER answered \(ver)") }
    try ns.send("USR 3 SSO I \(login)")
    let challenge = try ns.await("USR")
    guard challenge.count == 6, challenge[2...4] == ["SSO", "S", "MBI_KEY_OLD"] else {
        throw NSClientError("USR SSO I answered \(challenge)")
    }
    let nonce = challenge[5]
    let guid = version >= 16 ? "&guid=" + UUID().uuidString : ""
    let answer = try await daemon.get(
        "/v1/accounts/\(account)/sso?nonce=\(formEncode([("n", nonce)]).dropFirst(2))&trid=4\(guid)")
    guard answer.status == 200 else { throw NSClientError("sso answered \(answer.status): \(answer.body)") }
    let usr = try await tamper?(nonce, answer.json) ?? (answer.json["usr"] as? String ?? "")
    try ns.send(usr)
    return try ns.await("USR")
}

/// One MSNP8-14 login with the broker's Passport 1.4 ticket.
func twnLogin(_ sim: LiveSimFixture, _ daemon: DaemonProcess, account: String, login: String, version: Int)
    async throws -> (reply: [String], ticket: String)
{
    let ns = try NSClient(port: sim.server.nsPort!)
    try ns.send("VER 1 MSNP\(version) CVR0")
    _ = try ns.await("VER")
    try ns.send("USR 3 TWN I \(login)")
    let challenge = try ns.await("USR")
    guard challenge.count == 5, challenge[2...3] == ["TWN", "S"] else {
        throw NSClientError("USR TWN I answered \(challenge)")
    }
    let answer = try await daemon.get(
        "/v1/accounts/\(account)/passport14?challenge=\(formEncode([("c", challenge[4])]).dropFirst(2))")
    guard answer.status == 200, let ticket = answer.json["ticket"] as? String else {
        throw NSClientError("passport14 answered \(answer.status): \(answer.body)")
    }
    try ns.send("USR 4 TWN S \(ticket)")
    return (try ns.await("USR"), ticket)
}

/// livesim's count of `USR` logins by method: (successes, failures).
func usrLogins(_ sim: LiveSimFixture, _ method: String) async throws -> (success: Int, failure: Int) {
    let counts = (try await sim.counters()["ns_usr_logins"] as? [String: [String: Int]])?[method] ?? [:]
    return (counts["success"] ?? 0, counts["failure"] ?? 0)
}

/// A plain MSNP client over TCP, written for the tests: one command a line, `GCF` payloads
/// skipped by their length.
final class NSClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NSClientError("socket: \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            close(fd)
            throw NSClientError("connect: \(errno)")
        }
    }

    deinit { close(fd) }

    func send(_ line: String) throws {
        let bytes = Array((line + "\r\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw NSClientError("send: \(errno)") }
            sent += n
        }
    }

    /// The next command's words; nil when the server closed the connection.
    func read(timeout: Double = 10) throws -> [String]? {
        while true {
            if let cr = buffer.firstIndex(of: 13), cr + 1 < buffer.count, buffer[cr + 1] == 10 {
                let words = String(decoding: buffer[..<cr], as: UTF8.self).split(separator: " ").map(String.init)
                buffer.removeFirst(cr + 2)
                if words.first == "GCF" || words.first == "UBX" || words.first == "MSG",
                    let length = words.last.flatMap(Int.init)
                {
                    try fill(length, timeout: timeout)
                    buffer.removeFirst(length)
                    continue
                }
                return words
            }
            guard try fill(buffer.count + 1, timeout: timeout) else { return nil }
        }
    }

    /// Reads until `count` bytes are buffered; false at end of stream.
    @discardableResult
    func fill(_ count: Int, timeout: Double) throws -> Bool {
        while buffer.count < count {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(timeout * 1000)) == 1 else { throw NSClientError("no answer in \(timeout) s") }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { return false }
            guard n > 0 else { throw NSClientError("recv: \(errno)") }
            buffer += chunk[..<n]
        }
        return true
    }

    /// The next MSNP24 reply: `CMD TRID TARGET LENGTH` and LENGTH bytes of payload (an error,
    /// `911 TRID 0`, has none); nil at end of stream.
    func readFramed(timeout: Double = 10) throws -> (words: [String], payload: String)? {
        guard let words = try read(timeout: timeout) else { return nil }
        let length = Int(words.last ?? "") ?? 0
        guard Int(words.first ?? "") == nil, length > 0 else { return (words, "") }
        try fill(length, timeout: timeout)
        let payload = String(decoding: buffer.prefix(length), as: UTF8.self)
        buffer.removeFirst(length)
        return (words, payload)
    }

    /// Sends a framed MSNP24 command: the line, then the payload (headers, blank line, body).
    func sendFramed(_ name: String, _ trid: Int, _ target: String, body: String, headers: [(String, String)] = [])
        throws
    {
        let payload = headers.map { "\($0.0): \($0.1)\r\n" }.joined() + "\r\n" + body
        try sendRaw("\(name) \(trid) \(target) \(payload.utf8.count)\r\n" + payload)
    }

    func sendRaw(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw NSClientError("send: \(errno)") }
            sent += n
        }
    }

    /// Reads until a command named `name` (or an error code) arrives.
    func await(_ name: String) throws -> [String] {
        while let words = try read() {
            if words.first == name || Int(words.first ?? "") != nil { return words }
        }
        throw NSClientError("the server closed the connection before \(name)")
    }
}

struct NSClientError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// The text of the first `<name>` element in `xml`.
func element(_ name: String, in xml: String) -> String? {
    guard let open = xml.range(of: "<\(name)>"),
        let close = xml.range(of: "</\(name)>", range: open.upperBound..<xml.endIndex)
    else { return nil }
    return String(xml[open.upperBound..<close.lowerBound])
}

/// The MSNP24 login at livesim's notification server (`CNT`, `ATH`, `BND`, `PUT` with the
/// challenge answer), with the ATH command the broker wrote for the CNT answer's nonce. Returns the
/// replies' command lines; a success ends with `ATH 0 CON`.
func msnp24Login(_ sim: LiveSimFixture, athWire: (_ nonce: String) async throws -> String) async throws -> [String] {
    let ns = try NSClient(port: sim.server.nsPort!)
    var lines: [String] = []
    let connect =
        "<connect><ver>2</ver><agent><os>winnt</os><osVer>5.2</osVer><proc>x86</proc><lcid>en-us</lcid></agent></connect>"
    try ns.sendFramed("CNT", 1, "CON", body: connect)
    guard let cnt = try ns.readFramed() else { return lines }
    lines.append(cnt.words.joined(separator: " "))
    guard cnt.words.first == "CNT", let nonce = element("nonce", in: cnt.payload) else { return lines }
    try ns.sendRaw(try await athWire(nonce).replacingOccurrences(of: "{trid}", with: "2"))
    guard let ath = try ns.readFramed() else { return lines }
    lines.append(ath.words.joined(separator: " "))
    guard ath.words.first == "ATH" else { return lines }
    let msgr = """
        <msgr><ver>2</ver><altVersions><ver>1</ver></altVersions><client><name>Skype</name><ver>0/6.16.0.105/259/</ver>\
        </client><epid>EB80C4E5-10DC-11D2-8C04-00A0C94C5D75</epid></msgr>
        """
    try ns.sendFramed("BND", 3, "CON\\MSGR", body: msgr)
    guard let bnd = try ns.readFramed() else { return lines }
    lines.append(bnd.words.joined(separator: " "))
    guard bnd.words.first == "BND", let challengeNonce = element("nonce", in: bnd.payload),
        let registration = bnd.payload.components(separatedBy: "\r\n").first(where: {
            $0.hasPrefix("Set-Registration:")
        })
    else { return lines }
    let answer = Challenge.answer(nonce: challengeNonce)
    try ns.sendFramed(
        "PUT", 4, "MSGR\\CHALLENGE",
        body: "<challenge><appId>\(Challenge.defaultProductID)</appId><response>\(answer)</response></challenge>",
        headers: [
            (
                "Registration",
                String(registration.dropFirst("Set-Registration:".count)).trimmingCharacters(in: .whitespaces)
            )
        ])
    while let reply = try ns.readFramed(timeout: 5) {
        lines.append(reply.words.joined(separator: " "))
        if reply.words.first == "ATH" || Int(reply.words.first ?? "") != nil { break }
    }
    return lines
}
