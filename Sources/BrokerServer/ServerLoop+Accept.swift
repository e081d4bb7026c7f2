import BrokerCore
import CShims
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// New connections: accepted (at most 64 per pass of the loop, so that the connections already
/// open get their turn too), checked for peer credentials, and read at once.
extension ServerLoop {
    func accept(now: UInt64) {
        for _ in 0..<64 {
            let fd = tokenbroker_accept(listener)
            if fd < 0 {
                switch tokenbroker_errno() {
                case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                    return
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    // Out of descriptors: stop accepting for a moment instead of spinning; the
                    // waiting clients stay in the backlog.
                    logger.warning(
                        "cannot accept a connection; pausing accepts",
                        metadata: ["broker.reason": "\(Self.errorText())"])
                    _ = tokenbroker_epoll_ctl(epoll, EPOLL_CTL_DEL, listener, 0)
                    acceptPausedUntil = now + 100_000_000
                    return
                default:
                    // Level-triggered: returning would spin on the same error. Pause for a second.
                    logger.error("accept failed; pausing accepts", metadata: ["broker.reason": "\(Self.errorText())"])
                    _ = tokenbroker_epoll_ctl(epoll, EPOLL_CTL_DEL, listener, 0)
                    acceptPausedUntil = now + 1_000_000_000
                    return
                }
            }
            guard open < limits.maxConnections else {
                refuse(fd, now: now)
                continue
            }
            // Supplementary groups only when the policy looks at them: one system call less per
            // connection. A reload that starts using groups applies to connections opened after
            // it; one opened before is judged without its groups, which can only deny.
            guard let peer = PeerCredentials.read(fd: fd, groups: router.policyUsesGroups) else {
                tokenbroker_close(fd)
                continue
            }
            // The request usually arrives with the connection: read it now. A client that sends
            // one request and `Connection: close` is answered and closed without epoll ever
            // seeing its descriptor.
            let received = tokenbroker_recv(fd, readBuffer.baseAddress, readBuffer.count)
            let receiveError = received < 0 ? tokenbroker_errno() : 0
            if received > 0, answerWhole(fd, peer: peer, received: received, now: now) { continue }
            let slot = adopt(fd, peer: peer, now: now)
            handle(received, error: receiveError, on: slot, now: now)
            register(slot)
        }
    }

    /// A connection's slot: a kept one, reset, or a new one; in `slots` from now on.
    private func adopt(_ fd: Int32, peer: Peer, now: UInt64) -> Slot {
        serial &+= 1
        let slot: Slot
        if let kept = spare.popLast() {
            kept.reuse(fd: fd, serial: serial, peer: peer, now: now)
            slot = kept
        } else {
            slot = Slot(
                fd: fd, serial: serial,
                http: HTTPConnection(router: router, limits: limits, peer: peer, now: now, repeats: repeats))
        }
        if Int(fd) >= slots.count { slots += Array(repeating: nil, count: Int(fd) + 1 - slots.count + 64) }
        slots[Int(fd)] = slot
        open += 1
        nextDeadline = min(nextDeadline, slot.http.deadline)
        return slot
    }

    /// Adds a new connection that is still open to epoll, with the events it wants.
    private func register(_ slot: Slot) {
        guard slots[Int(slot.fd)] === slot, !slot.registered else { return }
        slot.registered = true
        slot.events = wantedEvents(slot)
        if tokenbroker_epoll_ctl(epoll, EPOLL_CTL_ADD, slot.fd, slot.events) != 0 { closeSlot(slot) }
    }

    /// A new connection whose first read is exactly one request head answered before, for a
    /// token, with `Connection: close` (tokenctl, curl, a script): answered from memory and
    /// closed here, without a connection object (`RepeatedReads.serve` with `whole`: the same
    /// access check, count, duration and log line as on any connection). Returns false, having
    /// written nothing, for anything else; the connection then goes the usual way with what was
    /// read. A send the socket does not take whole leaves the rest to a connection object that
    /// closes once it is written.
    private func answerWhole(_ fd: Int32, peer: Peer, received: Int, now: UInt64) -> Bool {
        out.removeAll(keepingCapacity: true)
        let bytes = UnsafeBufferPointer(
            start: readBuffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count: received)
        let (length, _) = repeats.serve(bytes, router: router, peer: peer, now: now, into: &out, whole: true)
        guard length > 0 else { return false }
        wholeAnswers += 1
        let written = out.withUnsafeBytes { tokenbroker_send(fd, $0.baseAddress, $0.count) }
        if written == out.count || (written < 0 && !Self.isTransient(tokenbroker_errno())) {
            // Sent, or the client is gone.
            tokenbroker_close(fd)
            return true
        }
        let slot = adopt(fd, peer: peer, now: now)
        slot.pending = Array(out[max(0, written)...])
        slot.pendingOffset = 0
        slot.http.closeAfterWriting()
        register(slot)
        return true
    }

    /// A connection over `maxConnections`: answered 503 at once and closed, without reading it.
    /// The client sees a clear `temporarily_unavailable` instead of a hang.
    private func refuse(_ fd: Int32, now: UInt64) {
        out.removeAll(keepingCapacity: true)
        APIResponse.error(
            BrokerError(
                .temporarilyUnavailable, "the daemon is serving \(limits.maxConnections) connections, its limit",
                hint: "try again shortly"),
            close: true
        ).serialize(into: &out, keepAlive: false, omitBody: false)
        _ = out.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(fd)
        refusals.count += 1
        if let last = refusals.lastWarning, now - last < 10_000_000_000 { return }
        logger.warning(
            "connection refused: server.max_connections reached",
            metadata: [
                "broker.event": "connection_refused", "broker.max_connections": "\(limits.maxConnections)",
                "broker.refused": "\(refusals.count)",
            ])
        refusals = (0, now)
    }
}
