extension BrokerClient {
    /// `GET /v1/events[?account=NAME]`: hands each event to `handle` as it arrives, until
    /// `handle` returns false or the daemon ends the stream. Returns the event the daemon ended
    /// it with (`shutdown` or `dropped`), or nil when `handle` stopped first.
    ///
    /// The connection is made within `timeout`; after that, each read waits at most `silence`.
    /// The daemon sends a heartbeat every 15 seconds, so a longer silence means it is stuck.
    /// Errors: `.api` for a refusal (`forbidden`, `not_found`), `.unreachable` when the daemon
    /// cannot be reached, falls silent, or closes the stream without a last event.
    public func events(
        account: String? = nil, silence: Duration = .seconds(60), _ handle: (ServerSentEvent) -> Bool
    ) throws(BrokerClientError) -> ServerSentEvent? {
        var path = "/v1/events"
        if let account { path += "?account=" + PercentEncoding.queryValue(account) }
        let message = try Self.requestBytes(method: "GET", path: path, body: nil)
        let socket = try UnixSocket(connectingTo: socketPath, deadline: ContinuousClock.now.advanced(by: timeout))
        _ = try socket.sendAll(message)

        var received: [UInt8] = []
        var count = 0
        // The head: an event stream, or an error answer read whole.
        while true {
            count = try socket.receive(into: &received, until: ContinuousClock.now.advanced(by: silence))
            guard let (head, bodyStart) = try HTTPResponseParser.head(received) else {
                if count == 0 { throw .protocolError("the daemon closed the connection without answering") }
                continue
            }
            if head.status == 200, head.header("content-type")?.hasPrefix("text/event-stream") == true {
                received.removeFirst(bodyStart)
                break
            }
            guard case .complete(let response) = try HTTPResponseParser.parse(received, atEOF: count == 0) else {
                continue
            }
            guard (200...299).contains(response.status) else {
                throw BrokerClientError(status: response.status, body: response.body, reason: response.reason)
            }
            throw .protocolError("the answer to GET \(path) is not an event stream")
        }
        var parser = EventStreamParser()
        while true {
            for event in try parser.feed(received) {
                if event.isLast {
                    _ = handle(event)
                    return event
                }
                if !handle(event) { return nil }
            }
            if count == 0 { throw .unreachable(path: socketPath, reason: "the daemon closed the event stream") }
            received.removeAll(keepingCapacity: true)
            count = try socket.receive(into: &received, until: ContinuousClock.now.advanced(by: silence))
        }
    }
}
