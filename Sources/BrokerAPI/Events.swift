#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The `data:` of an event of `GET /v1/events` (docs/API.md). Fields without a value are left
/// out. No field ever holds a secret.
public struct EventData: Codable, Sendable, Hashable {
    public var account: String?
    /// The credential: `token` (an OAuth scope's access token, with `scope`), `skypetoken`, `uic`,
    /// `cookies`, `ticket`, `site` (an RST site's ticket, with its address in `scope`) or
    /// `skylogin`.
    public var kind: String?
    /// The full scope name of a token, or the address of an RST site.
    public var scope: String?
    public var at: String
    /// When the credential is next refreshed (for `state`, enrolled and reauthenticated: the
    /// account's earliest refresh).
    public var nextRefreshAt: String?
    /// The API error code of a failure (`needs_reauth` for `needs_reauth`).
    public var errorCode: String?
    /// For a person: why a refresh failed, why the stream ends.
    public var message: String?
    /// `state` events only: the account's state, `active` or `needs_reauth`.
    public var state: String?

    public init(
        account: String? = nil, kind: String? = nil, scope: String? = nil, at: String, nextRefreshAt: String? = nil,
        errorCode: String? = nil, message: String? = nil, state: String? = nil
    ) {
        self.account = account
        self.kind = kind
        self.scope = scope
        self.at = at
        self.nextRefreshAt = nextRefreshAt
        self.errorCode = errorCode
        self.message = message
        self.state = state
    }

    enum CodingKeys: String, CodingKey {
        case account, kind, scope, at, message, state
        case nextRefreshAt = "next_refresh_at"
        case errorCode = "error_code"
    }
}

/// The event types of `GET /v1/events`.
public enum EventType {
    /// On connect, one per account the reader may read: its current state.
    public static let state = "state"
    public static let refreshed = "refreshed"
    public static let refreshFailed = "refresh_failed"
    public static let needsReauth = "needs_reauth"
    public static let reauthenticated = "reauthenticated"
    public static let enrolled = "enrolled"
    public static let loggedOut = "logged_out"
    /// The daemon is stopping; the stream ends.
    public static let shutdown = "shutdown"
    /// The reader fell too far behind and was dropped; the stream ends.
    public static let dropped = "dropped"
}

/// One server-sent event as it arrived: its type, id and data (the `data:` lines joined).
public struct ServerSentEvent: Sendable, Hashable {
    public var type: String
    public var id: String?
    public var data: String

    public init(type: String, id: String?, data: String) {
        self.type = type
        self.id = id
        self.data = data
    }

    /// The data as `EventData`; nil when it is not (a newer daemon's other kind of event).
    public var decoded: EventData? { try? BrokerJSON.decode(EventData.self, from: Array(data.utf8)) }

    /// Whether the daemon ends the stream after this event.
    public var isLast: Bool { type == EventType.shutdown || type == EventType.dropped }
}

/// Reads a `text/event-stream` as it arrives: bytes in, whole events out. Comments (the
/// heartbeat) and fields other than `event`, `id` and `data` are skipped. Lines end with LF,
/// CRLF or CR.
public struct EventStreamParser: Sendable {
    private var line: [UInt8] = []
    private var type = ""
    private var id: String?
    private var data: [String] = []
    private var afterCR = false

    /// The longest line kept; a longer one is a protocol error.
    public static let maximumLine = 1 << 20

    public init() {}

    /// The events the bytes complete, in order.
    public mutating func feed<Bytes: Sequence<UInt8>>(_ bytes: Bytes) throws(BrokerClientError) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0A, 0x0D:
                afterCR = byte == 0x0D
                if let event = endOfLine() { events.append(event) }
            default:
                guard line.count < Self.maximumLine else {
                    throw .protocolError("an event line is longer than \(Self.maximumLine) bytes")
                }
                line.append(byte)
            }
        }
        return events
    }

    private mutating func endOfLine() -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        guard !line.isEmpty else {
            // A blank line dispatches the event, if it has data.
            defer {
                type = ""
                data = []
            }
            guard !data.isEmpty else { return nil }
            return ServerSentEvent(type: type.isEmpty ? "message" : type, id: id, data: data.joined(separator: "\n"))
        }
        if line.first == UInt8(ascii: ":") { return nil }
        let colon = line.firstIndex(of: UInt8(ascii: ":")) ?? line.count
        let name = String(decoding: line[..<colon], as: UTF8.self)
        var valueStart = min(colon + 1, line.count)
        if valueStart < line.count, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = String(decoding: line[valueStart...], as: UTF8.self)
        switch name {
        case "event": type = value
        case "data": data.append(value)
        case "id": id = value
        default: break
        }
        return nil
    }
}
