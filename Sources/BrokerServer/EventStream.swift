import BrokerAPI
import BrokerCore
import Foundation

/// What a `GET /v1/events` asked for: who asked (the peer when the stream opened), and the one
/// account it wants, if it named one.
struct EventSubscription: Sendable {
    var peer: Peer
    var account: AccountName?

    /// Whether an event of `account` goes to this reader: the account it named, if any, and
    /// only accounts the policy in force lets it read.
    func admits(_ account: AccountName, policy: AccessPolicy) -> Bool {
        (self.account == nil || self.account == account) && policy.mayRead(peer, account: account)
    }
}

/// One event-stream connection's output, without the socket: whole frames queued, the bytes the
/// socket took, and how the stream ends. The event loop (`ServerLoop`) writes it out and drops a
/// reader that falls more than `limit` behind, so that a reader that does not read costs a
/// bounded amount of memory.
final class EventStream {
    /// What may wait for a reader before it is dropped.
    static let limit = 1 << 20
    /// How long a dropped reader has to take its last event before its connection is closed.
    static let dropGrace: UInt64 = 60_000_000_000

    let subscription: EventSubscription
    private var queue: [UInt8] = []
    private var offset = 0
    /// Set once the stream ends (the reader was dropped, the daemon is stopping): nothing more is
    /// queued, and the connection closes once the queue is written.
    private(set) var ending = false
    /// The client shut its writing side; a second end of input means it is gone.
    var inputClosed = false
    /// When an ended stream is closed even if its last bytes were not taken.
    var closeBy: UInt64?

    init(_ subscription: EventSubscription) {
        self.subscription = subscription
    }

    /// Bytes queued and not yet taken by the socket.
    var behind: Int { queue.count - offset }

    var isEmpty: Bool { offset == queue.count }

    /// Queues a whole frame; nothing once the stream ends.
    func append(_ frame: [UInt8]) {
        guard !ending else { return }
        queue += frame
    }

    /// Hands the unsent bytes to `send`, which returns how many it took (or -1).
    func send(_ body: (UnsafeRawBufferPointer) -> Int) -> Int {
        let sent = queue.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[offset...])) }
        if sent > 0 { consumed(sent) }
        return sent
    }

    private func consumed(_ count: Int) {
        offset += count
        if offset == queue.count {
            // A reader that caught up after a burst gives the burst's memory back.
            if queue.capacity > 64 * 1024 { queue = [] } else { queue.removeAll(keepingCapacity: true) }
            offset = 0
        } else if offset >= 256 * 1024 && offset * 2 >= queue.count {
            queue.removeFirst(offset)
            offset = 0
        }
    }

    /// Ends the stream with a last frame. With `discard`, what is queued is dropped first, but
    /// for the rest of a frame the socket has begun to take: the reader sees whole events only.
    func end(with frame: [UInt8], discard: Bool) {
        guard !ending else { return }
        if discard {
            var end = offset
            if offset > 0 {
                while end < queue.count, !(end >= 2 && queue[end - 2] == 0x0A && queue[end - 1] == 0x0A) { end += 1 }
            }
            queue = Array(queue[offset..<end]) + frame
            offset = 0
        } else {
            queue += frame
        }
        ending = true
    }
}

/// The bytes of an event stream: the answer's head, events and the heartbeat.
enum EventFrames {
    static let head = Array(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
            .utf8)

    /// A comment line: keeps the connection in use, and shows a reader that the daemon is alive.
    static let heartbeat = Array(": heartbeat\n\n".utf8)

    /// `event: TYPE`, `id: N`, `data: JSON` and a blank line. The JSON is one line.
    static func frame(_ type: String, id: UInt64, data: EventData) -> [UInt8] {
        var out = Array("event: \(type)\nid: \(id)\ndata: ".utf8)
        out += (try? BrokerJSON.encode(data)) ?? Array(#"{"at":"\#(data.at)"}"#.utf8)
        out += [0x0A, 0x0A]
        return out
    }

    static func data(_ event: AccountEvent) -> EventData {
        var data = EventData(
            account: event.account.rawValue, at: BrokerJSON.formatDate(event.at),
            nextRefreshAt: event.nextRefreshAt.map(BrokerJSON.formatDate), errorCode: event.errorCode?.rawValue,
            message: event.message)
        if let kind = event.credential { (data.kind, data.scope) = describe(kind) }
        return data
    }

    /// An account's state, for the `state` event a reader gets on connect.
    static func state(_ report: AccountReport, at: Date) -> EventData {
        EventData(
            account: report.name.rawValue, at: BrokerJSON.formatDate(at),
            nextRefreshAt: report.state == .active
                ? report.credentials.compactMap(\.nextRefresh).min().map(BrokerJSON.formatDate) : nil,
            message: report.stateReason, state: report.state.rawValue)
    }

    /// The event's `kind` and `scope`.
    static func describe(_ kind: CredentialKind) -> (kind: String, scope: String?) {
        switch kind {
        case .scope(let scope): ("token", scope.rawValue)
        case .site(let address): ("site", address)
        default: (kind.name, nil)
        }
    }
}
