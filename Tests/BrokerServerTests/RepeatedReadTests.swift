import BrokerCore
import Foundation
import Locks
import Logging
import Testing

@testable import BrokerServer

/// A service with one token, whose cache marks follow the contract of `CredentialService`: every
/// change of the token, its expiry or the margin is a new generation. It counts lookups and reads.
final class MarkedService: CredentialService, @unchecked Sendable {
    struct State {
        var token = "token-one"
        var expiresAt = Date(timeIntervalSince1970: 1_800_003_600)
        var now = Date(timeIntervalSince1970: 1_800_000_000.25)
        var margin: TimeInterval = 60
        var generation: UInt64 = 1
        var lookups = 0
        var reads = 0
    }

    let state = LockedValue(State())
    let configuration = EngineConfiguration(realms: [Realm(name: "live")])
    let degraded: String? = nil

    /// The answer a lookup now writes for alice's skype token, made apart from the server's path.
    func answer(keepAlive: Bool, omitBody: Bool = false) throws -> String {
        guard
            case .fresh(let served) = cachedRead(
                account: AccountName(rawValue: "alice")!, kind: .scope(.skype), minValid: 0)
        else { throw BrokerError(.internalError, "not fresh") }
        var out: [UInt8] = []
        APIResponse.writeToken(served, now: now(), keepAlive: keepAlive, omitBody: omitBody, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    func change(_ body: (inout State) -> Void) {
        state.withLock {
            body(&$0)
            $0.generation += 1
        }
    }

    func now() -> Date { state.withLock { $0.now } }
    func cacheMark() -> CacheMark? {
        state.withLock { CacheMark(generation: $0.generation, safetyMargin: $0.margin) }
    }
    func cacheGeneration() -> UInt64? { state.withLock { $0.generation } }
    func cachedRead(account: AccountName, kind: CredentialKind, minValid: TimeInterval) -> CachedRead {
        state.withLock { state in
            state.lookups += 1
            guard account.rawValue == "alice", kind == .scope(.skype) else { return .notFound }
            guard state.expiresAt.timeIntervalSince(state.now) >= max(state.margin, minValid) else { return .stale }
            return .fresh(
                ServedCredential(
                    kind: kind,
                    credential: Credential(
                        value: Secret(state.token), obtainedAt: state.now, expiresAt: state.expiresAt)))
        }
    }
    func read(account: AccountName, kind: CredentialKind, minValid: TimeInterval) async throws(BrokerError)
        -> ServedCredential
    { throw BrokerError(.temporarilyUnavailable, "refreshing") }
    func ticket(account: AccountName, minValid: TimeInterval) async throws(BrokerError) -> (
        ticket: String, method: TicketMethod, served: ServedCredential
    ) { throw BrokerError(.notFound, "no") }
    func perform(_ request: ServiceRequest) async throws(BrokerError) -> ServiceAnswer {
        throw BrokerError(.notFound, "no")
    }
    func accountNames() -> [AccountName] { [AccountName(rawValue: "alice")!] }
    func status(_ name: AccountName) -> AccountReport? { nil }
    func counts() -> (accounts: Int, needsReauth: Int) { (1, 0) }
    func enroll(_ command: EnrollCommand) async throws(BrokerError) -> AccountReport {
        throw BrokerError(.badRequest, "no")
    }
    func logout(_ name: AccountName) throws(BrokerError) {}
    func rekey(to keyBytes: [UInt8]) throws(BrokerError) -> RekeyReport { throw BrokerError(.badRequest, "no") }
    func recordRead(_ outcome: ReadOutcome, nanoseconds: UInt64?) {
        if outcome == .fresh { state.withLock { $0.reads += 1 } }
    }
    func updateGauges() {}
}

@Suite("Repeated token reads")
struct RepeatedReadTests {
    static let request = "GET /v1/accounts/alice/token?scope=skype HTTP/1.1\r\nHost: x\r\n\r\n"

    let service = MarkedService()
    let repeats = RepeatedReads()
    let router: Router

    init() {
        router = Router(
            service: service, policy: AccessPolicy(rules: [AccessRule(accounts: ["alice"], uids: [1000])]),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    func connection(uid: UInt32 = 1000) -> HTTPConnection {
        HTTPConnection(
            router: router, limits: ServerLimits(), peer: Peer(pid: 1, uid: uid, gid: uid), now: 1, repeats: repeats)
    }

    func send(_ text: String, on connection: HTTPConnection) -> (HTTPConnection.Next, String) {
        var out: [UInt8] = []
        let next = Array(text.utf8).withUnsafeBytes { connection.receive($0, now: 2, into: &out) }
        return (next, String(decoding: out, as: UTF8.self))
    }

    /// A connection's stored properties, each as text, by name.
    static func fields(_ connection: HTTPConnection) -> [String: String] {
        var fields: [String: String] = [:]
        for child in Mirror(reflecting: connection).children {
            if let label = child.label { fields[label] = String(describing: child.value) }
        }
        return fields
    }

    /// The answer a lookup now writes, made apart from the connection's path.
    func expected(keepAlive: Bool = true, omitBody: Bool = false) throws -> String {
        try service.answer(keepAlive: keepAlive, omitBody: omitBody)
    }

    var lookups: Int { service.state.withLock { $0.lookups } }
    var reads: Int { service.state.withLock { $0.reads } }

    @Test("a repeated request is answered with the lookup's bytes, kept while the cache and expires_in stay")
    func keptAnswer() throws {
        let client = connection()
        let want = try expected()
        let before = lookups
        for _ in 0..<4 { #expect(send(Self.request, on: client).1 == want) }
        // The first request is parsed and remembered, the second makes the answer, the next two
        // send it again without a lookup.
        #expect(lookups - before == 2)
        #expect(reads == 4)
        // Pipelined repeats are answered in order, each counted.
        #expect(send(Self.request + Self.request, on: client).1 == want + want)
        #expect(lookups - before == 2 && reads == 6)
    }

    @Test("a new token, a new margin or a new second makes a new answer")
    func changes() throws {
        let client = connection()
        for _ in 0..<3 { _ = send(Self.request, on: client) }
        service.change { $0.token = "token-two" }
        // The kept answer with the old token is dropped at the next read after the change.
        let rotated = send(Self.request, on: client).1
        #expect(rotated.contains("token-two") && !rotated.contains("token-one"))
        #expect(rotated == (try expected()))

        // The clock moves on by a second: expires_in is one less. Without a generation change
        // (the clock is not part of the cache).
        service.state.withLock { $0.now += 1 }
        let later = send(Self.request, on: client).1
        #expect(later == (try expected()) && later.contains(#""expires_in":3598}"#))

        // Inside the safety margin: not from memory (the service's read answers 503 here).
        service.change { $0.margin = 3599 }
        let (next, stale) = send(Self.request, on: client)
        guard case .later = next else {
            Issue.record("answered from memory inside the margin: \(stale)")
            return
        }
    }

    @Test("the token's margin is checked on every repeat, not only when the answer was made")
    func marginOnRepeat() throws {
        let client = connection()
        service.change { $0.margin = 3599.5 }
        // 3,599.75 s left: served, and the answer kept.
        for _ in 0..<3 { #expect(send(Self.request, on: client).1 == (try expected())) }
        // A quarter second later 3,599.5 s are left (still served), then 3,599.25 (not): the
        // same expires_in (3,599) all along, no cache change.
        service.state.withLock { $0.now += 0.25 }
        #expect(send(Self.request, on: client).1.contains(#""expires_in":3599}"#))
        service.state.withLock { $0.now += 0.25 }
        let (next, _) = send(Self.request, on: client)
        if case .later = next {} else { Issue.record("served with less than the margin left") }
    }

    @Test("every repeat is checked against the policy with its own connection's peer")
    func accessOnRepeat() throws {
        let allowed = connection()
        for _ in 0..<3 { _ = send(Self.request, on: allowed) }
        // The same bytes from a peer the policy does not admit: refused, though remembered.
        let (_, denied) = send(Self.request, on: connection(uid: 2000))
        #expect(denied.hasPrefix("HTTP/1.1 403"))
        #expect(!denied.contains("token-one"))
        // A new policy applies to the next repeat on a connection that was allowed.
        router.policy = AccessPolicy(rules: [AccessRule(accounts: ["alice"], uids: [3000])])
        let (_, after) = send(Self.request, on: allowed)
        #expect(after.hasPrefix("HTTP/1.1 403"))
    }

    @Test("the head's own fields still apply: Connection: close, HTTP/1.0, a chunked body; HEAD is not a read")
    func headFields() throws {
        let close = "GET /v1/accounts/alice/token?scope=skype HTTP/1.1\r\nConnection: close\r\n\r\n"
        for _ in 0..<3 {
            let (next, answer) = send(close, on: connection())
            #expect(answer == (try expected(keepAlive: false)))
            if case .close = next {} else { Issue.record("not closed: \(next)") }
        }
        // HEAD is not a token read (405), however often it comes.
        let head = "HEAD /v1/accounts/alice/token?scope=skype HTTP/1.1\r\n\r\n"
        let client = connection()
        for _ in 0..<3 { #expect(send(head, on: client).1.hasPrefix("HTTP/1.1 405")) }
        let old = "GET /v1/accounts/alice/token?scope=skype HTTP/1.0\r\n\r\n"
        for _ in 0..<3 {
            let (next, answer) = send(old, on: connection())
            #expect(answer == (try expected(keepAlive: false)))
            if case .close = next {} else { Issue.record("not closed: \(next)") }
        }
        // A request longer than its head (an empty chunked body) is answered from memory but not
        // remembered: its repeat's framing is still read, not taken for the next request.
        let chunked = "GET /v1/accounts/alice/token?scope=skype HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        for _ in 0..<3 {
            #expect(send(chunked, on: connection()).1.hasPrefix("HTTP/1.1 200 OK"))
            let answers = send(chunked + Self.request, on: connection()).1
            #expect(answers.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(answers)")
            #expect(!answers.contains("HTTP/1.1 400"))
        }
    }

    @Test("while the server stops, a repeat is answered with Connection: close")
    func quiescing() throws {
        let client = connection()
        for _ in 0..<3 { _ = send(Self.request, on: client) }
        _ = client.quiesce()
        let (next, answer) = send(Self.request, on: client)
        #expect(answer == (try expected(keepAlive: false)))
        if case .close = next {} else { Issue.record("not closed: \(next)") }
    }

    @Test("requests split anywhere across reads get the answers they get in one read")
    func splitAnywhere() throws {
        // A token read (remembered, then repeated), a request with a body, one with a chunked
        // body, and a read with min_valid, pipelined. A read that does not end on a request's
        // boundary leaves bytes that the next read completes.
        let other = "GET /v1/accounts/alice/token?scope=skype&min_valid=30 HTTP/1.1\r\n\r\n"
        let stream = Array(
            (Self.request + Self.request
                + "POST /v1/accounts/alice/token HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
                + "POST /v1/accounts/alice/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
                + other + Self.request).utf8)
        func answers(_ reads: [ArraySlice<UInt8>]) -> String {
            let client = connection()
            var all: [UInt8] = []
            for read in reads {
                var out: [UInt8] = []
                _ = read.withUnsafeBytes { client.receive($0, now: 2, into: &out) }
                all += out
            }
            return String(decoding: all, as: UTF8.self)
        }
        let whole = answers([stream[...]])
        #expect(whole.components(separatedBy: "HTTP/1.1 200 OK").count == 5, "\(whole)")
        #expect(whole.components(separatedBy: "HTTP/1.1 405").count == 3, "\(whole)")
        for cut in 1..<stream.count {
            let split = answers([stream[..<cut], stream[cut...]])
            #expect(split == whole, "split at byte \(cut)")
            if split != whole { break }
        }
        #expect(answers(stream.map { [$0][...] }) == whole, "a byte per read")
    }

    @Test(
        "a connection object reset for a new connection, from any state the old one was left in, serves it as a new object does"
    )
    func resetStartsClean() throws {
        let close = "GET /v1/accounts/alice/token?scope=skype HTTP/1.1\r\nConnection: close\r\n\r\n"
        // States a connection can be closed in: after Connection: close, waiting for an answer
        // computed later (a min_valid the cache cannot meet), halfway through a head or a body
        // (plain, after 100 Continue, or chunked), after the client's half-close, while the
        // server stops, as an event stream, and on a peer the policy refuses.
        let states: [(String, (HTTPConnection) -> Void)] = [
            ("closing", { _ = send(close, on: $0) }),
            ("busy", { _ = send("GET /v1/accounts/alice/token?scope=skype&min_valid=99999 HTTP/1.1\r\n\r\n", on: $0) }),
            ("half a head", { _ = send("GET /v1/accounts/alice/tok", on: $0) }),
            (
                "waiting for a body, 100 Continue sent",
                {
                    _ = send(
                        "POST /v1/accounts HTTP/1.1\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n", on: $0)
                }
            ),
            (
                "halfway through a chunked body",
                { _ = send("POST /v1/accounts HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", on: $0) }
            ),
            (
                "input closed",
                {
                    var out: [UInt8] = []
                    _ = $0.inputDidClose(now: 2, into: &out)
                }
            ),
            ("quiescing", { _ = $0.quiesce() }),
            ("streaming", { _ = send("GET /v1/events HTTP/1.1\r\n\r\n", on: $0) }),
        ]
        let fresh = connection()
        let (freshNext, freshAnswer) = send(Self.request, on: fresh)
        #expect(freshAnswer == (try expected()))
        for (name, leave) in states {
            let used = connection()
            leave(used)
            used.reset(peer: Peer(pid: 1, uid: 1000, gid: 1000), now: 1)
            // Every stored property, by reflection: one added to HTTPConnection and left out of
            // `reset` differs here as soon as one of these states sets it.
            #expect(Self.fields(used) == Self.fields(connection()), "\(name)")
            #expect(used.buffered == 0 && !used.busy && !used.closing && !used.streaming, "\(name)")
            #expect(used.deadline == connection().deadline, "\(name)")
            let (next, answer) = send(Self.request, on: used)
            #expect(answer == freshAnswer, "\(name)")
            if case .proceed = next, case .proceed = freshNext {} else { Issue.record("\(name): \(next)") }
            // And it goes on as a new one would: a second request, then Connection: close.
            #expect(send(Self.request, on: used).1 == freshAnswer, "\(name)")
            let (last, closed) = send(close, on: used)
            #expect(closed == (try expected(keepAlive: false)), "\(name)")
            if case .close = last {} else { Issue.record("\(name): not closed: \(last)") }
        }
        // The peer is the new connection's: one refused before is served, and the reverse.
        let refused = connection(uid: 2000)
        #expect(send(Self.request, on: refused).1.hasPrefix("HTTP/1.1 403"))
        refused.reset(peer: Peer(pid: 1, uid: 1000, gid: 1000), now: 1)
        #expect(send(Self.request, on: refused).1 == freshAnswer)
        refused.reset(peer: Peer(pid: 1, uid: 2000, gid: 2000), now: 1)
        #expect(send(Self.request, on: refused).1.hasPrefix("HTTP/1.1 403"))
    }
}
