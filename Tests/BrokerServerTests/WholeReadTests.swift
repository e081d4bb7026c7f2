import BrokerCore
import Dispatch
import Foundation
import Locks
import Logging
import Testing

@testable import BrokerServer

#if canImport(Glibc)
    import Glibc
#endif

/// A client that connects for one token read and sends `Connection: close` (tokenctl, curl, a
/// script) is answered right after the accept when its request is one the loop has answered
/// before (`ServerLoop.answerWhole`): no connection object, the same checks and counts.
@Suite("One read per connection, answered at the accept", .serialized)
struct WholeReadTests {
    static let request = "GET /v1/accounts/alice/token?scope=skype HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    /// A server on a real socket for `service`, whose policy lets this test's uid read alice.
    func withServer(
        _ service: MarkedService, _ body: (String, SocketServer) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tb-whole-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("s.sock").path
        let server = SocketServer(
            source: .path(path, mode: 0o600, group: nil), service: service,
            policy: AccessPolicy(rules: [AccessRule(accounts: ["alice"], uids: [getuid()])]), limits: ServerLimits(),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await whileServing(server) { try await body(path, server) }
    }

    /// One connection, one request: everything the server sent until it closed.
    func read(_ path: String, _ server: SocketServer, _ request: String = Self.request) async throws -> String {
        let client = try await connect(path, server, sending: request)
        var answer: [UInt8] = []
        #expect(await client.readAsync(into: &answer), "the server did not close the connection")
        return answer.text
    }

    /// A new connection that has sent `request`. The loop is held while the client connects and
    /// sends, so that the request is there when the loop accepts (else the loop can wake for the
    /// connection before its request arrives, and the accept finds nothing to answer).
    func connect(_ path: String, _ server: SocketServer, sending request: String) async throws -> RawClient {
        let gate = DispatchSemaphore(value: 0)
        await withCheckedContinuation { (held: CheckedContinuation<Void, Never>) in
            server.execute {
                held.resume()
                gate.wait()
            }
        }
        let client: RawClient
        do {
            client = try RawClient(path)
        } catch {
            gate.signal()
            throw error
        }
        client.send(request)
        gate.signal()
        return client
    }

    /// The answer a lookup writes for the request, with `Connection: close` unless `keepAlive`.
    func expected(_ service: MarkedService, keepAlive: Bool = false) throws -> String {
        try service.answer(keepAlive: keepAlive)
    }

    var reads: (MarkedService) -> Int { { $0.state.withLock { $0.reads } } }

    @Test("a remembered read with Connection: close is answered at the accept and counted")
    func answeredAtAccept() async throws {
        let service = MarkedService()
        try await withServer(service) { path, server in
            let want = try expected(service)
            // The first is parsed and remembered, with a connection object; the next ones are
            // answered at the accept, the first of them making the kept answer.
            for _ in 0..<4 { #expect(try await read(path, server) == want) }
            #expect(await server.wholeAnswers() == 3)
            #expect(reads(service) == 4)

        }
    }

    @Test(
        "at the accept, a remembered read is still refused to a peer the policy does not admit, and nothing is written")
    func refusedAtAccept() throws {
        // On the loop's own types: over the socket this test's uid may be root, whom the policy
        // always admits.
        let service = MarkedService()
        let router = Router(
            service: service, policy: AccessPolicy(rules: [AccessRule(accounts: ["alice"], uids: [1000])]),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let repeats = RepeatedReads()
        let connection = HTTPConnection(
            router: router, limits: ServerLimits(), peer: Peer(pid: 1, uid: 1000, gid: 1000), now: 1, repeats: repeats)
        var out: [UInt8] = []
        let want = try expected(service)
        _ = Array(Self.request.utf8).withUnsafeBytes { connection.receive($0, now: 2, into: &out) }
        #expect(out.text == want)
        func whole(uid: UInt32) -> (Int, String) {
            var out: [UInt8] = []
            let length = Array(Self.request.utf8).withUnsafeBufferPointer {
                repeats.serve(
                    $0, router: router, peer: Peer(pid: 1, uid: uid, gid: uid), now: ServerLoop.monotonicNow(),
                    into: &out,
                    whole: true
                )
                .length
            }
            return (length, out.text)
        }
        #expect(whole(uid: 2000) == (0, ""))
        #expect(reads(service) == 1)
        let (length, answer) = whole(uid: 1000)
        #expect(length == Self.request.utf8.count && answer == want)
        #expect(reads(service) == 2)
    }

    @Test("a first read that is more than the remembered head, or keeps the connection, goes the usual way")
    func otherFirstReads() async throws {
        let service = MarkedService()
        try await withServer(service) { path, server in
            let want = try expected(service)
            for _ in 0..<2 { #expect(try await read(path, server) == want) }
            let before = await server.wholeAnswers()
            #expect(before == 1)
            // Two requests in the first read: both answered in order by the connection object.
            let keep = Self.request.replacingOccurrences(of: "Connection: close\r\n", with: "")
            let client = try RawClient(path)
            client.send(keep + Self.request)
            var answers: [UInt8] = []
            #expect(await client.readAsync(into: &answers))
            #expect(answers.text.components(separatedBy: "HTTP/1.1 200 OK").count == 3, "\(answers.text)")
            #expect(answers.text.hasSuffix(want))
            #expect(await server.wholeAnswers() == before)

            // A remembered head without `Connection: close` as a new connection's first read: the
            // connection stays open for the next request.
            let wantKeep = try expected(service, keepAlive: true)
            for _ in 0..<2 {
                let client = try await connect(path, server, sending: keep)
                var answers: [UInt8] = []
                #expect(await client.readAsync(into: &answers) { $0.count >= wantKeep.utf8.count })
                client.send(keep)
                #expect(await client.readAsync(into: &answers) { $0.count >= 2 * wantKeep.utf8.count })
                #expect(answers.text == wantKeep + wantKeep)
            }
            #expect(await server.wholeAnswers() == before)
        }
    }

    @Test("an answer larger than one send takes is written whole, then the connection closes")
    func largeAnswer() async throws {
        let service = MarkedService()
        // Far more than a Unix socket's send buffer (about 200 KiB by default).
        service.change { $0.token = String(repeating: "t", count: 1 << 20) }
        try await withServer(service) { path, server in
            let want = try expected(service)
            #expect(want.utf8.count > 1 << 20)
            for _ in 0..<3 {
                let answer = try await read(path, server)
                #expect(answer.utf8.count == want.utf8.count)
                #expect(answer == want)
            }
            #expect(await server.wholeAnswers() == 2)
        }
    }
}
