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
                switch errno {
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
            let peer = PeerCredentials.read(fd: fd, groups: router.policyUsesGroups)
            guard peer != nil else {
                tokenbroker_close(fd)
                continue
            }
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
            // The request usually arrives with the connection: read it now. A client that sends
            // one request and `Connection: close` is answered and closed without epoll ever
            // seeing its descriptor.
            readable(slot, now: now)
            if slots[Int(fd)] === slot, !slot.registered {
                slot.registered = true
                slot.events = wantedEvents(slot)
                if tokenbroker_epoll_ctl(epoll, EPOLL_CTL_ADD, fd, slot.events) != 0 { closeSlot(slot) }
            }
        }
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
