import BrokerAPI
import BrokerCore
import Foundation
import Logging
import Synchronization
import Testing

@testable import BrokerServer

#if canImport(Glibc)
    import Glibc
#endif

/// The event loop's side of event streams, on a real socket: filtering, ids, heartbeats, a
/// reader that does not read, and the daemon stopping.
@Suite("Event streams on the socket", .serialized)
struct EventSocketTests {
    /// A server on a fresh socket, with a heartbeat every 200 ms; stopped (gracefully) after `body`.
    func withServer(
        maxConnections: Int = 64, _ body: (EventService, String, SocketServer) async throws -> Void
    ) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "tokenbroker-events-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("s.sock").path
        var limits = ServerLimits()
        limits.eventHeartbeat = .milliseconds(200)
        limits.idleTimeout = .milliseconds(300)
        limits.maxConnections = maxConnections
        let service = EventService()
        // The server runs as this test's uid, which administers it, as in the daemon: the streams
        // carry every account whether or not the tests run as root.
        let server = SocketServer(
            source: .path(path, mode: 0o600, group: nil), service: service,
            policy: AccessPolicy().running(as: getuid()), limits: limits,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try await whileServing(server) { try await body(service, path, server) }
    }

    func subscribe(_ path: String, _ query: String = "", receiveBuffer: Int32? = nil) throws -> RawClient {
        let client = try RawClient(path, receiveBuffer: receiveBuffer)
        client.send("GET /v1/events\(query) HTTP/1.1\r\nHost: x\r\nLast-Event-ID: 99\r\n\r\n")
        return client
    }

    @Test("state on connect, then the events each reader asked for, in order, with rising ids; heartbeats; shutdown")
    func stream() async throws {
        var all: [UInt8] = []
        var one: [UInt8] = []
        var clients: [RawClient] = []
        try await withServer { service, path, _ in
            let everything = try subscribe(path)
            let alice = try subscribe(path, "?account=alice")
            clients = [everything, alice]
            #expect(await everything.readAsync(into: &all) { (try? $0.events().count) == 2 })
            #expect(await alice.readAsync(into: &one) { (try? $0.events().count) == 1 })
            let states = try all.events()
            try #require(states.map(\.type) == ["state", "state"])
            #expect(
                states.compactMap(\.decoded).map { [$0.account, $0.state] } == [
                    ["alice", "active"], ["bob", "needs_reauth"],
                ])
            #expect(states[1].decoded?.message == "the grant was revoked" && states[1].decoded?.nextRefreshAt == nil)
            #expect(states[0].decoded?.nextRefreshAt == "2027-01-15T08:45:00Z")

            service.send(.refreshed, "alice")
            service.send(.needsReauth, "bob", message: "revoked")
            service.send(.loggedOut, "alice")
            #expect(await everything.readAsync(into: &all) { (try? $0.events().count) == 5 })
            #expect(await alice.readAsync(into: &one) { (try? $0.events().count) == 3 })
            // Idle for longer than the idle timeout, yet open, and with heartbeats.
            try await Task.sleep(for: .milliseconds(700))
            #expect(
                await everything.readAsync(into: &all, timeout: .seconds(2)) { $0.text.contains(": heartbeat\n\n") })
        }
        // The server stopped: each stream ends with `shutdown`, then the connection closes.
        #expect(await clients[0].readAsync(into: &all))
        #expect(await clients[1].readAsync(into: &one))
        let events = try all.events()
        try #require(events.map(\.type) == ["state", "state", "refreshed", "needs_reauth", "logged_out", "shutdown"])
        let ids = events.compactMap { $0.id.flatMap(UInt64.init) }
        #expect(ids.count == events.count && ids == ids.sorted() && Set(ids).count == ids.count)
        #expect(events[3].decoded?.message == "revoked" && events[3].decoded?.kind == "token")
        let mine = try one.events()
        try #require(mine.map(\.type) == ["state", "refreshed", "logged_out", "shutdown"])
        #expect(mine.compactMap(\.decoded?.account).allSatisfy { $0 == "alice" })
        // The same events have the same ids on both streams.
        #expect(mine[1].id == events[2].id)
        #expect(one.text.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"))
    }

    @Test("a reader that does not read is dropped once 1 MiB waits for it; the others are served")
    func slowReader() async throws {
        try await withServer { service, path, _ in
            let stuck = try subscribe(path, receiveBuffer: 4096)
            let reader = try subscribe(path, "?account=alice")
            // On a thread of its own: the tasks' few threads may be busy with other tests.
            let reading = Mutex<[UInt8]?>(nil)
            let progress = Mutex(0)
            Thread.detachNewThread {
                var read: [UInt8] = []
                _ = reader.read(into: &read, timeout: .seconds(60)) { bytes in
                    progress.withLock { $0 = bytes.count }
                    return bytes.text.contains("event: refreshed\n")
                }
                reading.withLock { $0 = read }
            }
            let message = String(repeating: "m", count: 1000)
            // About 1.1 KiB each: 2,000 events are well over the limit and what the socket holds.
            // The reader that reads is never let fall more than about 500 KiB behind (its thread
            // may wait for a core on a busy machine), so only a fault of the server drops it.
            for batch in 1...40 {
                for _ in 0..<50 { service.send(.refreshFailed, "alice", message: message) }
                try await Task.sleep(for: .milliseconds(20))
                let deadline = ContinuousClock.now + .seconds(30)
                while progress.withLock({ $0 }) < (batch - 9) * 50 * 1000, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
            service.send(.refreshed, "alice")
            while reading.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(20)) }
            let read = try reading.withLock { $0 ?? [] }.events()
            // The reader that reads is not dropped.
            #expect(read.count == 1 + 2000 + 1)
            #expect(read.last?.type == "refreshed")
            var dropped: [UInt8] = []
            #expect(await stuck.readAsync(into: &dropped, timeout: .seconds(20)))
            let events = try dropped.events()
            #expect(events.last?.type == "dropped")
            #expect(events.last?.decoded?.message?.contains("more than 1 MiB behind") == true)
            let before = events.dropLast()
            // What the socket held came first; what was queued went.
            #expect(before.count > 2 && before.count < 2000, "\(before.count) events before the drop")
            // Whole events only: each one before the last decodes.
            #expect(before.dropFirst(2).allSatisfy { $0.type == "refresh_failed" && $0.decoded?.message == message })
        }
    }

    @Test("event streams count towards max_connections")
    func connectionLimit() async throws {
        try await withServer(maxConnections: 2) { _, path, _ in
            var first: [UInt8] = []
            var second: [UInt8] = []
            let a = try subscribe(path)
            let b = try subscribe(path)
            #expect(await a.readAsync(into: &first) { (try? $0.events().count) == 2 })
            #expect(await b.readAsync(into: &second) { (try? $0.events().count) == 2 })
            let c = try RawClient(path)
            c.send("GET /v1/health HTTP/1.1\r\n\r\n")
            var refused: [UInt8] = []
            #expect(await c.readAsync(into: &refused))
            #expect(refused.text.hasPrefix("HTTP/1.1 503"))
        }
    }
}
