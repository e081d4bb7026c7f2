import BrokerAPI
import BrokerCore
import Foundation
import Logging
import NIOHTTP1
import Testing

@testable import BrokerServer

#if canImport(Glibc)
    import Glibc
#endif

/// Two accounts, `alice` (active) and `bob` (needs a new sign-in), and events the test sends.
final class EventService: CredentialService {
    let configuration = EngineConfiguration(realms: [Realm(name: "live")])
    let degraded: String? = nil
    let (stream, continuation) = AsyncStream<ServiceEvent>.makeStream()
    let epoch = Date(timeIntervalSince1970: 1_800_000_000)

    func now() -> Date { epoch }
    func events() -> AsyncStream<ServiceEvent> { stream }

    func send(_ change: AccountEvent.Change, _ account: String, message: String? = nil) {
        continuation.yield(
            .account(
                AccountEvent(
                    change, account: AccountName(rawValue: account)!, credential: .scope(.ssl), at: epoch,
                    nextRefreshAt: epoch + 600, message: message)))
    }

    func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead { .notFound }
    func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential
    { throw BrokerError(.notFound, "no") }
    func ticket(account: AccountName, minValid: TimeInterval) async throws(BrokerError) -> (
        ticket: String, method: TicketMethod, served: ServedCredential
    ) { throw BrokerError(.notFound, "no") }
    func perform(_ request: ServiceRequest) async throws(BrokerError) -> ServiceAnswer {
        throw BrokerError(.notFound, "no")
    }
    func accountNames() -> [AccountName] { ["alice", "bob"].compactMap(AccountName.init(rawValue:)) }
    func status(_ name: AccountName) -> AccountReport? {
        guard ["alice", "bob"].contains(name.rawValue) else { return nil }
        let bob = name.rawValue == "bob"
        return AccountReport(
            name: name, realm: "live", login: name.rawValue, state: bob ? .needsReauth : .active,
            stateReason: bob ? "the grant was revoked" : nil, ticketMethod: .oauth,
            credentials: [
                CredentialReport(
                    kind: .scope(.ssl), expiresAt: epoch + 3600, lastRefresh: epoch, nextRefresh: epoch + 2700,
                    backoffUntil: nil, failures: 0, lastError: nil)
            ])
    }
    func counts() -> (accounts: Int, needsReauth: Int) { (2, 1) }
    func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        throw BrokerError(.badRequest, "no")
    }
    func logout(_ name: AccountName) throws(BrokerError) {}
    func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport { throw BrokerError(.badRequest, "no") }
    func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64?) {}
    func updateGauges() {}
}

/// Binds `server` and runs it while `body` runs; then stops it gracefully (and also when `body`
/// throws, before the error is passed on).
func whileServing(_ server: SocketServer, _ body: () async throws -> Void) async throws {
    try await server.bind()
    let running = Task { try await server.run() }
    do {
        try await body()
    } catch {
        running.cancel()
        _ = try? await running.value
        throw error
    }
    running.cancel()
    try await running.value
}

/// A blocking client on the socket that reads only when asked.
final class RawClient: @unchecked Sendable {
    let fd: Int32

    init(_ path: String, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { throw BrokerError(.internalError, "cannot connect") }
    }

    deinit { close(fd) }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// `read`, without holding a thread while it waits: it polls without blocking and sleeps
    /// between polls, so that the server's own tasks (which deliver the events) and other tests
    /// keep the few threads the tasks share.
    ///
    /// The time runs out only when a poll made after the deadline finds nothing: a test task that
    /// waited longer than `timeout` for a thread (all of them busy with other tests) still reads
    /// what the server sent meanwhile, rather than failing without looking.
    func readAsync(
        into buffer: inout [UInt8], timeout: Duration = .seconds(10), until done: ([UInt8]) -> Bool = { _ in false }
    ) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !done(buffer) {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 0) > 0 else {
                guard ContinuousClock.now < deadline else { return false }
                try? await Task.sleep(for: .milliseconds(5))
                continue
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return true }
            buffer += chunk[..<count]
        }
        return true
    }

    /// Reads until `done` holds for what was read, the peer closes, or the time runs out. It
    /// blocks its thread: call it from a thread of its own (see `readAsync`).
    func read(
        into buffer: inout [UInt8], timeout: Duration = .seconds(10), until done: ([UInt8]) -> Bool = { _ in false }
    ) -> Bool {
        let deadline = ContinuousClock.now + timeout
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !done(buffer) {
            // As in `readAsync`: a last look after the deadline, without waiting.
            let left = max(.zero, deadline - ContinuousClock.now)
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let (seconds, attoseconds) = left.components
            let wait = left == .zero ? 0 : Int32(seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
            guard poll(&poller, 1, wait) > 0 else {
                if left == .zero { return false }
                continue
            }
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return true }
            buffer += chunk[..<count]
        }
        return true
    }
}

extension [UInt8] {
    var text: String { String(decoding: self, as: UTF8.self) }

    /// The events after the head.
    func events() throws -> [ServerSentEvent] {
        guard let end = text.range(of: "\r\n\r\n") else { return [] }
        var parser = EventStreamParser()
        return try parser.feed(Array(text[end.upperBound...].utf8))
    }
}

@Suite("Event streams", .serialized)
struct EventStreamTests {
    let alice = AccountName(rawValue: "alice")!

    func connection(_ service: EventService, uid: UInt32) -> HTTPConnection {
        let router = Router(
            service: service, policy: AccessPolicy(rules: [AccessRule(accounts: ["alice"], uids: [1000])]),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        return HTTPConnection(
            router: router, limits: ServerLimits(), peer: Peer(pid: 1, uid: uid, gid: uid), now: 1_000_000_000)
    }

    func send(_ request: String, _ connection: HTTPConnection) -> (HTTPConnection.Next, String) {
        var out: [UInt8] = []
        let next = Array(request.utf8).withUnsafeBytes { connection.receive($0, now: 2_000_000_000, into: &out) }
        return (next, out.text)
    }

    @Test("GET /v1/events becomes a stream; ?account= is checked like a read; other methods are 405")
    func routes() {
        let service = EventService()
        let (next, head) = send("GET /v1/events HTTP/1.1\r\n\r\n", connection(service, uid: 1000))
        guard case .stream(let subscription) = next else {
            Issue.record("not a stream: \(next)")
            return
        }
        #expect(subscription.account == nil && subscription.peer.uid == 1000)
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"))
        #expect(!head.contains("Content-Length"))
        let router = connection(service, uid: 1000).router
        #expect(router.snapshot(subscription).map(\.account) == ["alice"])
        #expect(router.snapshot(EventSubscription(peer: Peer(pid: 1, uid: 0, gid: 0), account: nil)).count == 2)

        let (_, forbidden) = send("GET /v1/events?account=bob HTTP/1.1\r\n\r\n", connection(service, uid: 1000))
        #expect(forbidden.hasPrefix("HTTP/1.1 403"))
        let (_, missing) = send("GET /v1/events?account=carol HTTP/1.1\r\n\r\n", connection(service, uid: 0))
        #expect(missing.hasPrefix("HTTP/1.1 404"))
        let (_, invalid) = send("GET /v1/events?account=%00 HTTP/1.1\r\n\r\n", connection(service, uid: 0))
        #expect(invalid.hasPrefix("HTTP/1.1 404"))
        let (one, _) = send("GET /v1/events?account=alice HTTP/1.1\r\n\r\n", connection(service, uid: 1000))
        if case .stream(let subscription) = one { #expect(subscription.account == alice) } else { Issue.record() }
        let (_, post) = send("POST /v1/events HTTP/1.1\r\nContent-Length: 0\r\n\r\n", connection(service, uid: 0))
        #expect(post.hasPrefix("HTTP/1.1 405"))
        let (_, head405) = send("HEAD /v1/events HTTP/1.1\r\n\r\n", connection(service, uid: 0))
        #expect(head405.hasPrefix("HTTP/1.1 405"))
        // Answers to earlier pipelined requests come first; what follows the stream's request is
        // not answered.
        let (piped, both) = send(
            "GET /v1/health HTTP/1.1\r\n\r\nGET /v1/events HTTP/1.1\r\n\r\nGET /v1/health HTTP/1.1\r\n\r\n",
            connection(service, uid: 0))
        #expect(both.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        if case .stream = piped {} else { Issue.record("not a stream: \(piped)") }
    }

    @Test("the frame format, and the fields of an event: absent ones left out")
    func frames() throws {
        let event = AccountEvent(
            .refreshFailed, account: alice, credential: .scope(.skype), at: Date(timeIntervalSince1970: 1_800_000_000),
            nextRefreshAt: Date(timeIntervalSince1970: 1_800_000_060), errorCode: .upstreamError, message: "502")
        let frame = EventFrames.frame("refresh_failed", id: 7, data: EventFrames.data(event)).text
        #expect(
            frame == """
                event: refresh_failed
                id: 7
                data: {"account":"alice","at":"2027-01-15T08:00:00Z","error_code":"upstream_error","kind":"token",\
                "message":"502","next_refresh_at":"2027-01-15T08:01:00Z","scope":"service::skype.com::MBI_SSL"}


                """)
        let site = EventFrames.data(AccountEvent(.refreshed, account: alice, credential: .site("a.b"), at: .now))
        #expect(site.kind == "site" && site.scope == "a.b")
        let gone = EventFrames.data(AccountEvent(.loggedOut, account: alice, at: .now))
        #expect(gone.kind == nil && gone.scope == nil && gone.nextRefreshAt == nil && gone.errorCode == nil)
    }

    @Test("a dropped stream keeps the rest of a frame begun, then its last frame; memory is given back")
    func dropBoundary() {
        let stream = EventStream(EventSubscription(peer: Peer(pid: 1, uid: 0, gid: 0), account: nil))
        stream.append(Array("event: a\ndata: 1\n\n".utf8))
        stream.append(Array("event: b\ndata: 2\n\n".utf8))
        #expect(stream.send { _ in 3 } == 3)
        stream.end(with: Array("event: dropped\ndata: x\n\n".utf8), discard: true)
        var rest: [UInt8] = []
        _ = stream.send {
            rest += $0
            return $0.count
        }
        #expect(rest.text == "nt: a\ndata: 1\n\nevent: dropped\ndata: x\n\n")
        #expect(stream.isEmpty && stream.ending)
        stream.append(Array("late\n\n".utf8))
        #expect(stream.isEmpty)

        let other = EventStream(EventSubscription(peer: Peer(pid: 1, uid: 0, gid: 0), account: nil))
        other.append(Array("event: a\ndata: 1\n\n".utf8))
        other.end(with: Array("event: dropped\ndata: x\n\n".utf8), discard: true)
        var all: [UInt8] = []
        _ = other.send {
            all += $0
            return $0.count
        }
        #expect(all.text == "event: dropped\ndata: x\n\n")
    }
}
