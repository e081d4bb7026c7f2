import BrokerCore

#if canImport(Glibc)
    import Glibc
#endif

/// The token reads an event loop answered, by the exact bytes of their request heads. A head
/// that is byte for byte one seen before parses the same (the parse is a function of those bytes
/// and the loop's limits), so its read is known without parsing it or decoding its target. A
/// poller on keep-alive and a client that connects once per read send the same bytes every time.
///
/// Each entry also keeps the last answer written for its read (`TokenAnswer`), which
/// `Router.serveToken` sends again while the cache has not changed and its `expires_in` still
/// holds. What is never skipped: the access check with the connection's own peer, the count,
/// the latency and the log line of every read.
///
/// A fixed number of entries, placed by a hash of the request line: a new head takes its place's
/// entry.
/// A head is remembered only once it was answered from memory, and without an answer: the
/// answer is made on its first repeat, so that reads spread over many accounts (each head seen
/// once in a while) cost a hash and a copy of the head, not an answer each.
///
/// Confined to the loop's thread, like the connections that share it.
final class RepeatedReads {
    /// A class, so that a read takes one reference to its entry rather than one to each of its
    /// parts, and its answer is replaced in place.
    final class Entry {
        let head: [UInt8]
        let read: TokenRead
        let keepAlive: Bool
        /// Unchecked exclusivity: see `ServerLoop.slots`.
        @exclusivity(unchecked) var answer: TokenAnswer?

        init(head: [UInt8], read: TokenRead, keepAlive: Bool) {
            self.head = head
            self.read = read
            self.keepAlive = keepAlive
        }
    }

    /// Entries at most, and the longest head remembered: what this holds is bounded by about
    /// `capacity × (maxHead + an answer)`, about half a megabyte.
    static let capacity = 256
    static let maxHead = 512

    /// Unchecked exclusivity: see `ServerLoop.slots`.
    @exclusivity(unchecked) private var entries: [Entry?] = Array(repeating: nil, count: capacity)
    /// The cache's generation when the kept answers were last looked at: once it moves, none of
    /// them can be sent again, and they are dropped (their slots zeroed) rather than left to
    /// hold old tokens until their heads come again.
    private var generation: UInt64?

    init() {}

    /// Answers the request in front of `bytes` from memory, into `out`, when its head is one
    /// remembered. Returns the head's length (0 when not answered: the head is not one
    /// remembered, or its read cannot be answered from memory, and the generic path then parses
    /// and answers it, with the same checks) and whether the connection stays open.
    ///
    /// A remembered head is complete: bytes that begin with it have their first head end where
    /// it has its own, so it is found without looking for the end of the head. Entries are
    /// placed by the request line alone, which is all that is hashed.
    ///
    /// `whole`: answer only when `bytes` are exactly the remembered head and it closes the
    /// connection (a new connection's first read, answered without a connection object).
    /// `now`: when the loop woke up to these bytes, the start of the read's duration.
    func serve(
        _ bytes: UnsafeBufferPointer<UInt8>, router: Router, peer: Peer, now: UInt64, into out: inout [UInt8],
        whole: Bool = false
    ) -> (length: Int, keepAlive: Bool) {
        guard let line = Self.requestLine(bytes) else { return (0, false) }
        let generation = router.service.cacheGeneration()
        dropAnswers(ifChangedFrom: generation)
        let index = Self.place(line)
        guard let entry = entries[index], entry.head.count <= bytes.count,
            Self.equal(entry.head, UnsafeBufferPointer(rebasing: bytes[..<entry.head.count]))
        else { return (0, false) }
        if whole, entry.keepAlive || entry.head.count != bytes.count { return (0, entry.keepAlive) }
        let served = router.serveToken(
            entry.read, peer: peer, keepAlive: entry.keepAlive, answer: &entry.answer,
            generation: generation, started: now, into: &out)
        return (served ? entry.head.count : 0, entry.keepAlive)
    }

    /// Remembers a head whose read was just answered from memory.
    func remember(_ head: UnsafeBufferPointer<UInt8>, read: TokenRead, keepAlive: Bool) {
        guard head.count <= Self.maxHead, let line = Self.requestLine(head) else { return }
        let index = Self.place(line)
        if let entry = entries[index], Self.equal(entry.head, head) { return }
        entries[index] = Entry(head: Array(head), read: read, keepAlive: keepAlive)
    }

    private func dropAnswers(ifChangedFrom now: UInt64?) {
        // Compared by hand: `!=` on optionals goes through Equatable's witness, on every read.
        switch (now, generation) {
        case (let now?, let generation?) where now == generation: return
        case (nil, nil): return
        default: break
        }
        generation = now
        for case let entry? in entries where entry.answer != nil { entry.answer = nil }
    }

    /// The request line, up to its LF, if it is within the first `maxHead` bytes.
    private static func requestLine(_ bytes: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        guard let base = bytes.baseAddress, !bytes.isEmpty,
            let lf = memchr(base, 0x0A, min(bytes.count, maxHead))
        else { return nil }
        return UnsafeBufferPointer(start: base, count: base.distance(to: lf.assumingMemoryBound(to: UInt8.self)))
    }

    private static func equal(_ kept: [UInt8], _ head: UnsafeBufferPointer<UInt8>) -> Bool {
        kept.count == head.count
            && kept.withUnsafeBufferPointer { memcmp($0.baseAddress!, head.baseAddress!, head.count) == 0 }
    }

    /// FNV-1a over a request line, eight bytes at a time.
    private static func place(_ head: UnsafeBufferPointer<UInt8>) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let raw = UnsafeRawBufferPointer(head)
        var i = 0
        while i + 8 <= raw.count {
            hash = (hash ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x100_0000_01b3
            i += 8
        }
        while i < raw.count {
            hash = (hash ^ UInt64(raw[i])) &* 0x100_0000_01b3
            i += 1
        }
        hash ^= hash >> 29
        return Int(truncatingIfNeeded: hash) & (capacity - 1)
    }
}
