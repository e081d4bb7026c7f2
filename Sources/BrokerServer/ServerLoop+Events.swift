import BrokerAPI
import BrokerCore
import CShims
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Event streams (`GET /v1/events`) on the event loop: a connection becomes one after its head
/// is written; it gets a `state` event per readable account, then every account event its peer
/// may read, a heartbeat every `limits.eventHeartbeat`, and `shutdown` when the daemon stops.
/// A reader more than `EventStream.limit` behind is dropped with a last `dropped` event.
extension ServerLoop {
    func startStream(_ slot: Slot, _ subscription: EventSubscription, now: UInt64) {
        let stream = EventStream(subscription)
        slot.stream = stream
        streams[slot.fd] = slot
        if nextHeartbeat == nil { nextHeartbeat = now &+ limits.eventHeartbeat.nanoseconds }
        logger.debug(
            "event stream opened",
            metadata: [
                "broker.event": "events_opened", "broker.peer.uid": "\(subscription.peer.uid)",
                "broker.peer.pid": "\(subscription.peer.pid)",
            ])
        for state in router.snapshot(subscription) {
            eventID += 1
            stream.append(EventFrames.frame(EventType.state, id: eventID, data: state))
        }
        flushStream(slot)
        if slots[Int(slot.fd)] === slot, stream.behind > EventStream.limit { drop(slot, now: now) }
    }

    /// An account event, to every stream whose reader may read the account.
    func broadcast(_ event: ServiceEvent, now: UInt64) {
        guard case .account(let event) = event, !streams.isEmpty else { return }
        let policy = router.policy
        var frame: [UInt8]?
        for slot in streams.values where slot.stream?.subscription.admits(event.account, policy: policy) == true {
            if frame == nil {
                eventID += 1
                frame = EventFrames.frame(event.change.rawValue, id: eventID, data: EventFrames.data(event))
            }
            enqueue(frame!, to: slot, now: now)
        }
    }

    func heartbeat(now: UInt64) {
        for slot in streams.values { enqueue(EventFrames.heartbeat, to: slot, now: now) }
        nextHeartbeat = streams.isEmpty ? nil : now &+ limits.eventHeartbeat.nanoseconds
    }

    /// Queues a frame and writes what the socket takes. A reader whose socket is full is not
    /// tried again until epoll says it has room; one that falls more than the limit behind is
    /// dropped.
    private func enqueue(_ frame: [UInt8], to slot: Slot, now: UInt64) {
        guard slots[Int(slot.fd)] === slot, let stream = slot.stream, !stream.ending else { return }
        let waiting = !stream.isEmpty || !slot.pending.isEmpty
        stream.append(frame)
        if !waiting { flushStream(slot) }
        if slots[Int(slot.fd)] === slot, stream.behind > EventStream.limit { drop(slot, now: now) }
    }

    /// Ends a stream whose reader fell behind: what was queued for it goes, a last event says
    /// why, and the connection closes once that is written (or after `EventStream.dropGrace`).
    private func drop(_ slot: Slot, now: UInt64) {
        guard let stream = slot.stream else { return }
        let peer = stream.subscription.peer
        logger.notice(
            "event stream reader dropped: more than 1 MiB behind",
            metadata: [
                "broker.event": "events_dropped", "broker.peer.uid": "\(peer.uid)", "broker.peer.pid": "\(peer.pid)",
                "broker.peer.comm": "\(PeerCredentials.command(of: peer.pid) ?? "?")",
                "broker.queued_bytes": "\(stream.behind)",
            ])
        eventID += 1
        stream.end(
            with: EventFrames.frame(
                EventType.dropped, id: eventID,
                data: EventData(
                    at: BrokerJSON.formatDate(router.service.now()),
                    message: "this reader fell more than 1 MiB behind and was dropped; reconnect to start again"
                        + " from the current state")),
            discard: true)
        stream.closeBy = now &+ EventStream.dropGrace
        nextDeadline = min(nextDeadline, now &+ EventStream.dropGrace)
        flushStream(slot)
    }

    /// The daemon is stopping: every stream ends with `shutdown`, after what it has queued.
    func endStreams(now: UInt64) {
        guard !streams.isEmpty else { return }
        eventID += 1
        let frame = EventFrames.frame(
            EventType.shutdown, id: eventID,
            data: EventData(at: BrokerJSON.formatDate(router.service.now()), message: "the daemon is stopping"))
        for slot in streams.values {
            slot.stream?.end(with: frame, discard: false)
            flushStream(slot)
        }
    }

    /// Writes what the socket takes, after what the connection owed before the stream; closes an
    /// ended stream once all is written.
    func flushStream(_ slot: Slot) {
        guard let stream = slot.stream else { return }
        if slot.pending.isEmpty {
            while !stream.isEmpty {
                let written = stream.send { Glibc.send(slot.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written > 0 { continue }
                let error = tokenbroker_errno()
                if error == EINTR { continue }
                if error == EAGAIN || error == EWOULDBLOCK { break }
                return closeSlot(slot)
            }
            if stream.isEmpty, stream.ending { return closeSlot(slot) }
        }
        updateInterest(slot)
    }

    /// What the reader sends is read and thrown away; its end of input is noted, and a second
    /// one (or EPOLLHUP) means it is gone.
    func streamReadable(_ slot: Slot) {
        guard let stream = slot.stream else { return }
        let received = recv(slot.fd, readBuffer.baseAddress, readBuffer.count, 0)
        if received > 0 { return }
        if received < 0 {
            if Self.isTransient(tokenbroker_errno()) { return }
            return closeSlot(slot)
        }
        if stream.inputClosed { return closeSlot(slot) }
        stream.inputClosed = true
        updateInterest(slot)
    }

    func streamClosed(_ slot: Slot) {
        if streams[slot.fd] === slot { streams[slot.fd] = nil }
        if streams.isEmpty { nextHeartbeat = nil }
        logger.debug("event stream closed", metadata: ["broker.event": "events_closed"])
    }
}
