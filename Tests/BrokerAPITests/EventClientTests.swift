import Foundation
import Testing

@testable import BrokerAPI

private let head =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n"
private let stream =
    "event: state\nid: 1\ndata: {\"account\":\"alice\",\"at\":\"2026-11-27T14:00:00Z\",\"state\":\"active\"}\n\n"
    + ": heartbeat\n\n"
    + "event: refreshed\nid: 2\ndata: {\"account\":\"alice\",\"at\":\"2026-11-27T14:00:01Z\",\"kind\":\"uic\"}\n\n"
    + "event: shutdown\nid: 3\ndata: {\"at\":\"2026-11-27T14:00:02Z\",\"message\":\"the daemon is stopping\"}\n\n"

@Suite struct EventClientTests {
    @Test("the parser: events split anywhere, CRLF and CR line ends, comments, several data lines, other fields")
    func parser() throws {
        var parser = EventStreamParser()
        var events: [ServerSentEvent] = []
        for byte in Array(stream.utf8) { events += try parser.feed([byte]) }
        #expect(events.map(\.type) == ["state", "refreshed", "shutdown"])
        #expect(events.map(\.id) == ["1", "2", "3"])
        #expect(events[1].decoded?.kind == "uic" && events[2].isLast && !events[0].isLast)
        #expect(events[0].decoded?.state == "active")

        var other = EventStreamParser()
        let odd = try other.feed(Array("retry: 10\r\nevent: x\r\ndata: a\r\ndata:b\r\n\r\ndata: c\r\rid\n\n".utf8))
        #expect(
            odd == [
                ServerSentEvent(type: "x", id: nil, data: "a\nb"), ServerSentEvent(type: "message", id: nil, data: "c"),
            ])
        // An event without data is not dispatched.
        #expect(try other.feed(Array("event: empty\n\n".utf8)).isEmpty)
    }

    @Test("BrokerClient.events hands each event over as it comes, and returns the last one")
    func client() throws {
        let bytes = Array((head + stream).utf8)
        let server = try CannedServer(
            .init(
                stride(from: 0, to: bytes.count, by: 37).map { Array(bytes[$0..<min($0 + 37, bytes.count)]) },
                keepOpen: true))
        var seen: [String] = []
        let last = try BrokerClient(socketPath: server.path, timeout: .seconds(5)).events(account: "alice@example.com")
        {
            seen.append($0.type)
            return true
        }
        #expect(seen == ["state", "refreshed", "shutdown"])
        #expect(last?.type == "shutdown")
        let request = server.requests().first ?? ""
        #expect(request.hasPrefix("GET /v1/events?account=alice@example.com HTTP/1.1\r\n"))
    }

    @Test("a refusal is an API error; a stream that ends without a last event is an unreachable daemon")
    func failures() throws {
        let body = #"{"error":{"code":"forbidden","message":"uid 1000 may not read account bob"}}"#
        let refused = try CannedServer(
            .init(
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
                    + body, keepOpen: true))
        do {
            _ = try BrokerClient(socketPath: refused.path, timeout: .seconds(5)).events { _ in true }
            Issue.record("no error")
        } catch {
            #expect(error.code == "forbidden")
        }
        let cut = try CannedServer(.init(head + "event: state\nid: 1\ndata: {\"at\":\"x\"}\n\nevent: refr"))
        var seen = 0
        do {
            _ = try BrokerClient(socketPath: cut.path, timeout: .seconds(5)).events { _ in
                seen += 1
                return true
            }
            Issue.record("no error")
        } catch {
            guard case .unreachable(_, let reason) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(reason.contains("closed the event stream"))
        }
        #expect(seen == 1)
        // The caller may stop reading.
        let long = try CannedServer(.init(head + stream, keepOpen: true))
        #expect(try BrokerClient(socketPath: long.path).events { _ in false } == nil)
    }
}
