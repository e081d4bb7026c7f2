import BrokerCore
import CShims
import Foundation
import Locks
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The server's event loop: one thread, one epoll set, the listening socket and every
/// connection. A cached read is answered on this thread between one `recv` and one `send`; what
/// must wait (a refresh, an enrollment) runs as a task, whose answer comes back through the
/// mailbox. Everything but the mailbox is touched by the loop's thread only. Event streams
/// (`GET /v1/events`) are written from here too: ServerLoop+Events.swift.
final class ServerLoop: @unchecked Sendable {
    enum Message {
        case answered(fd: Int32, serial: UInt64, APIResponse)
        case execute(@Sendable () -> Void)
        /// Stop accepting, close idle connections, finish the rest (up to `grace`), then end.
        case quiesce(grace: Duration)
        /// For the event streams' readers.
        case event(ServiceEvent)
    }

    /// A connection: its descriptor, the HTTP state, and what could not be written yet.
    final class Slot {
        private(set) var fd: Int32
        private(set) var serial: UInt64
        let http: HTTPConnection
        /// Unchecked exclusivity, like `stream`: see `ServerLoop.slots`.
        @exclusivity(unchecked) var pending: [UInt8] = []
        var pendingOffset = 0
        /// The epoll events registered now, once registered.
        var events: UInt32 = 0
        var registered = false
        /// Set once the connection is an event stream.
        @exclusivity(unchecked) var stream: EventStream?
        /// In `turns`: requests are left over after its last turn's budget.
        var queued = false

        init(fd: Int32, serial: UInt64, http: HTTPConnection) {
            self.fd = fd
            self.serial = serial
            self.http = http
        }

        /// A closed connection's slot taken for a new one: as `init` and `HTTPConnection`'s own
        /// `init` leave them. A new serial, so that an answer still on its way to the old
        /// connection is not written to the new one.
        func reuse(fd: Int32, serial: UInt64, peer: Peer?, now: UInt64) {
            self.fd = fd
            self.serial = serial
            pending = []
            pendingOffset = 0
            events = 0
            registered = false
            stream = nil
            queued = false
            http.reset(peer: peer, now: now)
        }
    }

    /// Slots of closed connections, each with its `HTTPConnection`, kept for the next accepts (at
    /// most `spareLimit`): a client that connects once per read would otherwise cost two objects
    /// made and freed per read. A slot is kept only when nothing else holds it: not waiting in
    /// `turns`, not an event stream (see `closeSlot`). Unchecked, like `slots`.
    @exclusivity(unchecked) var spare: [Slot] = []
    static let spareLimit = 64

    let router: Router
    let limits: ServerLimits
    let logger: Logger
    let epoll: Int32
    private let wake: Int32
    var listener: Int32
    /// The connections by descriptor. This, `out`, `HTTPConnection.input` and
    /// `RepeatedReads.entries` are touched on the loop's thread only, on every read, and no access
    /// to one overlaps another access to it: `@exclusivity(unchecked)` leaves out the runtime's
    /// tracking of each access, about 2% of the loop's time in a profile at 64 connections.
    @exclusivity(unchecked) var slots: [Slot?] = []
    var open = 0
    var serial: UInt64 = 0
    /// The earliest time a connection's timer can run out; the loop sleeps until then.
    var nextDeadline = UInt64.max
    /// The event streams, by descriptor.
    var streams: [Int32: Slot] = [:]
    /// The last event's `id`: one counter for the daemon.
    var eventID: UInt64 = 0
    /// When the streams next get a heartbeat; nil while there is none.
    var nextHeartbeat: UInt64?
    private var quiesceDeadline: UInt64?
    /// Accepting paused (descriptors ran out) until then.
    var acceptPausedUntil: UInt64?
    /// What the connection being served produced, before it is sent (see `slots`).
    @exclusivity(unchecked) var out: [UInt8] = []
    /// Token reads answered before, by their request heads: shared by the loop's connections.
    let repeats = RepeatedReads()
    let readBuffer: UnsafeMutableRawBufferPointer
    private let mailbox = LockedValue<(messages: [Message], signalled: Bool)>(([], false))
    private let finished = LockedValue<(done: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))
    /// Connections with requests left over after their turn, served in order on the next pass
    /// (looked at on every turn of the loop: unchecked, like `slots`).
    @exclusivity(unchecked) var turns: [Slot] = []
    /// The turns being given: `takeTurns` swaps it with `turns`, so that neither array is copied
    /// while the turns it gives add new ones.
    @exclusivity(unchecked) private var due: [Slot] = []
    /// Connections answered by `answerWhole`, without a connection object (read by tests).
    var wholeAnswers = 0
    /// Refusals over `maxConnections` since the last warning, and when that was.
    var refusals = (count: 0, lastWarning: UInt64?.none)

    init(listener: Int32, router: Router, limits: ServerLimits, logger: Logger) throws {
        self.listener = listener
        self.router = router
        self.limits = limits
        self.logger = logger
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        wake = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        readBuffer = .allocate(byteCount: 64 * 1024, alignment: 16)
        // Bound once: `HTTPConnection` reads what arrives as bytes, in place.
        readBuffer.bindMemory(to: UInt8.self)
        out.reserveCapacity(64 * 1024)
        guard epoll >= 0, wake >= 0 else {
            throw BrokerError(.internalError, "cannot create the event loop: \(Self.errorText())")
        }
        guard tokenbroker_epoll_ctl(epoll, EPOLL_CTL_ADD, wake, UInt32(EPOLLIN.rawValue)) == 0,
            tokenbroker_epoll_ctl(epoll, EPOLL_CTL_ADD, listener, UInt32(EPOLLIN.rawValue)) == 0
        else { throw BrokerError(.internalError, "cannot watch the socket: \(Self.errorText())") }
    }

    deinit {
        readBuffer.deallocate()
        close(epoll)
        close(wake)
    }

    /// Starts the loop's thread.
    func start() {
        let thread = Thread { [self] in
            run()
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// From any thread.
    func post(_ message: Message) {
        let signal = mailbox.withLock { box -> Bool in
            box.messages.append(message)
            defer { box.signalled = true }
            return !box.signalled
        }
        if signal {
            var one: UInt64 = 1
            _ = Glibc.write(wake, &one, 8)
        }
    }

    /// Returns once the loop has ended.
    func finish() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = finished.withLock { state -> Bool in
                if state.done { return true }
                state.waiter = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }

    // MARK: - The loop

    private func run() {
        // Named from the thread itself (Linux allows 15 characters), for perf and top -H.
        tokenbroker_name_thread("tokenbrokerd-io")
        let capacity = 256
        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: capacity)
        defer { events.deallocate() }
        // The time the last wait ended: the next wait's timeout counts from it, one clock read
        // per turn rather than two. The turn's own work (microseconds, a few milliseconds at most)
        // is added to the sleep; the timers it serves are seconds long.
        var now = Self.monotonicNow()
        while true {
            var timeout: Int32 = -1
            // Two at a time: `min` of more than two takes the rest as an array, made on every turn.
            let wakeAt = min(
                min(nextDeadline, quiesceDeadline ?? .max), min(acceptPausedUntil ?? .max, nextHeartbeat ?? .max))
            if !turns.isEmpty {
                timeout = 0
            } else if wakeAt != .max {
                timeout = wakeAt <= now ? 0 : Int32(clamping: (wakeAt - now) / 1_000_000 + 1)
            }
            let count = tokenbroker_epoll_wait(epoll, events, Int32(capacity), timeout)
            if count < 0 {
                if tokenbroker_errno() == EINTR {
                    now = Self.monotonicNow()
                    continue
                }
                logger.critical(
                    "epoll_wait failed; the server stops", metadata: ["broker.reason": "\(Self.errorText())"])
                break
            }
            let after = Self.monotonicNow()
            now = after
            for i in 0..<Int(count) {
                let fd = tokenbroker_epoll_fd(events + i)
                let flags = tokenbroker_epoll_events(events + i)
                if fd == wake {
                    if drainMailbox(now: after) { return end() }
                } else if fd == listener {
                    accept(now: after)
                } else if let slot = slot(fd) {
                    if flags & UInt32(EPOLLOUT.rawValue) != 0 { writable(slot, now: after) }
                    if flags & UInt32(EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0,
                        slots[Int(fd)] === slot
                    {
                        readable(slot, now: after)
                    }
                }
            }
            takeTurns(now: after)
            if let paused = acceptPausedUntil, after >= paused, listener >= 0 {
                acceptPausedUntil = nil
                _ = tokenbroker_epoll_ctl(epoll, EPOLL_CTL_ADD, listener, UInt32(EPOLLIN.rawValue))
            }
            if after >= nextDeadline { sweep(now: after) }
            if let heartbeat = nextHeartbeat, after >= heartbeat { self.heartbeat(now: after) }
            if let quiesceDeadline {
                if open == 0 { return end() }
                if after >= quiesceDeadline {
                    for case let slot? in slots { closeSlot(slot) }
                    return end()
                }
            }
        }
        end()
    }

    private func end() {
        for case let slot? in slots { closeSlot(slot) }
        if listener >= 0 {
            close(listener)
            listener = -1
        }
        let waiter = finished.withLock { state in
            state.done = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    private func slot(_ fd: Int32) -> Slot? {
        Int(fd) < slots.count ? slots[Int(fd)] : nil
    }

    /// Returns true when the loop should end.
    private func drainMailbox(now: UInt64) -> Bool {
        var value: UInt64 = 0
        _ = Glibc.read(wake, &value, 8)
        let messages = mailbox.withLock { box in
            defer {
                box.messages.removeAll(keepingCapacity: true)
                box.signalled = false
            }
            return box.messages
        }
        for message in messages {
            switch message {
            case .answered(let fd, let serial, let response):
                guard let slot = slot(fd), slot.serial == serial else { continue }
                out.removeAll(keepingCapacity: true)
                let next = slot.http.complete(response, now: now, into: &out)
                act(next, slot, now: now)
            case .execute(let work):
                work()
            case .event(let event):
                broadcast(event, now: now)
            case .quiesce(let grace):
                if listener >= 0 {
                    _ = tokenbroker_epoll_ctl(epoll, EPOLL_CTL_DEL, listener, 0)
                    close(listener)
                    listener = -1
                }
                acceptPausedUntil = nil
                quiesceDeadline = now + grace.nanoseconds
                endStreams(now: now)
                for case let slot? in slots where slot.stream == nil && slot.http.quiesce() && slot.pending.isEmpty {
                    closeSlot(slot)
                }
                if open == 0 { return true }
            }
        }
        return false
    }

    func readable(_ slot: Slot, now: UInt64) {
        if slot.stream != nil { return streamReadable(slot) }
        let received = tokenbroker_recv(slot.fd, readBuffer.baseAddress, readBuffer.count)
        handle(received, error: received < 0 ? tokenbroker_errno() : 0, on: slot, now: now)
    }

    /// What one `recv` into `readBuffer` returned on a connection (`error`: its errno when negative).
    func handle(_ received: Int, error: Int32, on slot: Slot, now: UInt64) {
        out.removeAll(keepingCapacity: true)
        let next: HTTPConnection.Next
        if received > 0 {
            next = slot.http.receive(UnsafeRawBufferPointer(rebasing: readBuffer[..<received]), now: now, into: &out)
        } else if received == 0 {
            // A second end of input: the peer is gone altogether (EPOLLHUP keeps firing).
            if slot.http.inputClosed {
                closeSlot(slot)
                return
            }
            next = slot.http.inputDidClose(now: now, into: &out)
        } else if Self.isTransient(error) {
            return
        } else {
            closeSlot(slot)
            return
        }
        act(next, slot, now: now)
    }

    /// Writes what the connection produced, then does what it asked.
    private func act(_ next: HTTPConnection.Next, _ slot: Slot, now: UInt64) {
        if !out.isEmpty {
            if slot.pending.isEmpty {
                guard sendOut(slot) else { return }
            } else {
                slot.pending += out
            }
            out.removeAll(keepingCapacity: true)
        }
        switch next {
        case .proceed:
            // Requests left after this turn's budget wait for the connection's next turn, after
            // every other ready connection and the listener have had theirs. With output still
            // pending, `writable` goes on once it is written.
            if slot.http.moreToAnswer, slot.pending.isEmpty, !slot.queued {
                slot.queued = true
                turns.append(slot)
            }
        case .close:
            if slot.pending.isEmpty {
                closeSlot(slot)
                return
            }
        case .later(let work):
            let fd = slot.fd
            let serial = slot.serial
            Task { [self] in
                let response = await work()
                post(.answered(fd: fd, serial: serial, response))
            }
        case .stream(let subscription):
            startStream(slot, subscription, now: now)
            guard slots[Int(slot.fd)] === slot else { return }
        }
        updateInterest(slot)
        // Every read, answer and write passes here: the connection's timers count from now on.
        nextDeadline = min(nextDeadline, slot.http.deadline)
    }

    /// Sends `out` on a connection with nothing pending; what the socket does not take becomes
    /// pending. Returns false when the connection failed and was closed.
    private func sendOut(_ slot: Slot) -> Bool {
        let written = out.withUnsafeBytes { tokenbroker_send(slot.fd, $0.baseAddress, $0.count) }
        if written < 0, !Self.isTransient(tokenbroker_errno()) {
            closeSlot(slot)
            return false
        }
        let sent = max(0, written)
        if sent < out.count {
            slot.pending = Array(out[sent...])
            slot.pendingOffset = 0
        }
        return true
    }

    private func writable(_ slot: Slot, now: UInt64) {
        while slot.pendingOffset < slot.pending.count {
            let written = slot.pending.withUnsafeBytes {
                tokenbroker_send(slot.fd, $0.baseAddress! + slot.pendingOffset, $0.count - slot.pendingOffset)
            }
            if written < 0 {
                let error = tokenbroker_errno()
                if error == EAGAIN || error == EWOULDBLOCK { return }
                if error == EINTR { continue }
                closeSlot(slot)
                return
            }
            slot.pendingOffset += written
        }
        slot.pending = []
        slot.pendingOffset = 0
        if slot.stream != nil { return flushStream(slot) }
        if slot.http.closing {
            closeSlot(slot)
            return
        }
        if slot.http.quiescing, !slot.http.busy, slot.http.buffered == 0 {
            closeSlot(slot)
            return
        }
        // Reading paused while the answers waited; requests may be waiting in the buffer.
        out.removeAll(keepingCapacity: true)
        let next = slot.http.process(now: now, into: &out)
        act(next, slot, now: now)
    }

    /// Reads while there is nothing left to write and the buffer is bounded; writes while
    /// something is pending.
    func updateInterest(_ slot: Slot) {
        // Before registration (the read right after accept), `accept` registers what is wanted.
        guard slot.registered else { return }
        let wanted = wantedEvents(slot)
        if wanted != slot.events {
            slot.events = wanted
            _ = tokenbroker_epoll_ctl(epoll, EPOLL_CTL_MOD, slot.fd, wanted)
        }
    }

    func wantedEvents(_ slot: Slot) -> UInt32 {
        if !slot.pending.isEmpty { return UInt32(EPOLLOUT.rawValue) }
        if let stream = slot.stream {
            // A reader's close shows as EPOLLHUP, which epoll reports whatever is asked.
            if !stream.isEmpty { return UInt32(EPOLLOUT.rawValue) }
            return stream.inputClosed ? 0 : UInt32(EPOLLIN.rawValue)
        }
        // A connection waiting for its turn is not read: what it sent already is enough to go on.
        if !slot.http.closing, !slot.http.inputClosed, !slot.queued,
            !(slot.http.busy && slot.http.buffered > limits.maxHeaderBytes + limits.maxBodyBytes)
        {
            return UInt32(EPOLLIN.rawValue)
        }
        return 0
    }

    func closeSlot(_ slot: Slot) {
        guard Int(slot.fd) < slots.count, slots[Int(slot.fd)] === slot else { return }
        slots[Int(slot.fd)] = nil
        open -= 1
        // No connection, no connection timer: the loop sleeps without a timeout (no kernel timer
        // armed and cancelled on every wait while clients connect once per read).
        if open == 0 { nextDeadline = .max }
        tokenbroker_close(slot.fd)
        if slot.stream != nil {
            streamClosed(slot)
        } else if !slot.queued, spare.count < Self.spareLimit {
            // Its callers only look it up again by descriptor, and find it gone; an answer on
            // its way is matched by serial. An accept is the next to touch it.
            spare.append(slot)
        }
    }

    /// Gives each connection with requests left over its next turn.
    private func takeTurns(now: UInt64) {
        guard !turns.isEmpty else { return }
        swap(&due, &turns)
        defer { due.removeAll(keepingCapacity: true) }
        for slot in due {
            slot.queued = false
            guard slots[Int(slot.fd)] === slot, slot.pending.isEmpty, slot.http.moreToAnswer else {
                if slots[Int(slot.fd)] === slot { updateInterest(slot) }
                continue
            }
            out.removeAll(keepingCapacity: true)
            act(slot.http.process(now: now, into: &out), slot, now: now)
        }
    }

    /// Closes connections whose timer ran out and finds the next deadline.
    private func sweep(now: UInt64) {
        var next = UInt64.max
        for case let slot? in slots {
            if let stream = slot.stream {
                // Exempt from the timers; an ended stream's reader has until `closeBy`.
                guard let closeBy = stream.closeBy else { continue }
                if now >= closeBy { closeSlot(slot) } else { next = min(next, closeBy) }
            } else if slot.http.expired(now: now) {
                if slot.http.requestStarted != nil {
                    logger.debug("request not received in time; closing", metadata: ["broker.event": "request_timeout"])
                }
                closeSlot(slot)
            } else if slot.http.busy {
                // Its timers start again when the answer comes; look again by then anyway.
                next = min(next, now &+ limits.idleNanoseconds)
            } else {
                next = min(next, slot.http.deadline)
            }
        }
        // A connection's timer is checked at most every 10 ms.
        nextDeadline = max(next, now + 10_000_000)
    }

    // MARK: - Helpers

    /// CLOCK_MONOTONIC in nanoseconds: the server's clock for its timers and for how long each
    /// read took (one vDSO call, without `DispatchTime`'s wrapper).
    static func monotonicNow() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// The time since `start` on `monotonicNow`'s clock; 0 for a start given as later than now
    /// (a caller's own reckoning of the time, as tests and the fuzz harness pass).
    static func nanoseconds(since start: UInt64) -> UInt64 {
        let now = monotonicNow()
        return now > start ? now - start : 0
    }

    /// A failed call to make again later (EAGAIN, EWOULDBLOCK) or at once (EINTR).
    static func isTransient(_ error: Int32) -> Bool { error == EAGAIN || error == EWOULDBLOCK || error == EINTR }

    static func errorText() -> String { String(cString: strerror(tokenbroker_errno())) }
}
