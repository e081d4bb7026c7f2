import Foundation
import Locks
import Logging
import NIOHTTP1

/// The HTTP gateway (`POST /gateway/gateway.dll`): the notification-server exchange carried in
/// HTTPS requests, as the web client and HTTP-polling clients used it.
///
/// `?Action=open&Server=NS&IP=...` opens a session; every answer carries
/// `X-MSN-Messenger: SessionID=<id>; GW-IP=<host>`, and later requests name it with
/// `?SessionID=<id>` (with `Action=poll` to fetch pending output). A request body holds one or more
/// MSNP commands; the response body holds the replies. When the session ends the header adds
/// `Session=close`. It is the only place `<web-compact-ticket />` is accepted, and only from a
/// request with `X-MSN-Auth: Use-Cookie` and valid MSPAuth/MSPProf/WLSSC cookies.
final class NSGateway: Sendable {
    struct Entry {
        var session = NSSession()
        var lastUsed: Date
    }

    static let idleTimeout: TimeInterval = 600
    static let contentType = "application/x-msn-messenger"

    private let sessions = LockedValue<[String: Entry]>([:])
    private let state: SimState
    private let logger: Logger?

    init(state: SimState, logger: Logger?) {
        self.state = state
        self.logger = logger
    }

    private static func newSessionID() -> String {
        "\(UInt32.random(in: 1_000_000_000...UInt32.max)).\(UInt16.random(in: 10_000...UInt16.max))"
    }

    func handle(_ request: SimRequest) -> SimResponse {
        guard request.method == .POST else { return .text(.methodNotAllowed, "") }
        let query = request.queryItems
        let action = query["Action"]?.lowercased()
        let useCookie = request.headers.first(name: "X-MSN-Auth")?.caseInsensitiveCompare("Use-Cookie") == .orderedSame
        let transport = NSSession.Transport.gateway(cookies: request.cookies, useCookie: useCookie)
        let now = Date()

        // The gateway lock is taken before the world's lock, never the other way round.
        let result = sessions.withLock { sessions -> Result<(String, NSSession.Output, String?), SimResponseBox> in
            let id: String
            var entry: Entry
            switch action {
            case "open":
                guard (query["Server"] ?? "NS").uppercased() == "NS" else {
                    return .failure(
                        SimResponseBox(.text(.badRequest, "only Server=NS is served here", type: "text/plain")))
                }
                sessions = sessions.filter { now.timeIntervalSince($0.value.lastUsed) < Self.idleTimeout }
                id = Self.newSessionID()
                entry = Entry(lastUsed: now)
            case nil, "poll":
                guard let given = query["SessionID"], let existing = sessions[given] else {
                    return .failure(
                        SimResponseBox(.text(.badRequest, "unknown or missing SessionID", type: "text/plain")))
                }
                id = given
                entry = existing
            default:
                return .failure(SimResponseBox(.text(.badRequest, "unknown Action", type: "text/plain")))
            }
            // Replies are produced as the commands arrive, so a poll only finds output that its own
            // body caused; an empty poll answers with an empty body.
            let out = entry.session.receive(request.body, transport: transport, state: state, now: now)
            entry.lastUsed = now
            sessions[id] = out.close ? nil : entry
            return .success((id, out, entry.session.account))
        }
        switch result {
        case .failure(let box):
            return box.response
        case .success(let (id, out, account)):
            for event in out.events { event.log(logger, transport: "gateway") }
            var messenger = "SessionID=\(id); GW-IP=\(request.host)"
            if out.close { messenger += "; Session=close" }
            var response = SimResponse(
                status: .ok,
                headers: [
                    ("Content-Type", Self.contentType), ("X-MSN-Messenger", messenger),
                ], body: out.bytes)
            response.account = account
            return response
        }
    }
}
