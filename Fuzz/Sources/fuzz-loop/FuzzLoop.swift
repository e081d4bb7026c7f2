// libFuzzer entry point: the daemon's real event loop (`ServerLoop`: accept, the shared read
// buffer, partial writes, the mailbox that brings answers computed by tasks back, quiescing) over a
// real Unix socket, with several client connections at once, against the stub credential service
// (StubService.swift), whose stale reads (`erin`, or `min_valid` of an hour) take 1 ms.
//
// Each input starts a new loop on a new listening socket and is read as a script. The first byte
// gives the number of connections (1 to 6), all connected at once; then each byte is an operation,
// its high nibble choosing the connection:
//   0-5, 12-15  send one of the well-formed requests of `requests`, chosen by the next byte, cut in
//               up to three pieces at points given by the bytes after (each piece its own `send`,
//               with a pause between them, so that the loop reads them apart);
//   6           send the next (1 + byte % 64) bytes as they are;
//   7           send the first (byte % length) bytes of a request, and nothing more of it;
//   8           half-close (shutdown for writing);
//   9           reset: close without reading what the daemon sent;
//   10          read what has arrived;
//   11          quiesce the loop (the daemon's graceful stop; 50 ms of grace);
// and a pause of 0.2 ms after every operation whose byte is odd.
// After the script every connection still open is half-closed and read to its end.
//
// Checked on every input, besides crashes, AddressSanitizer and Swift's runtime checks:
// - every connection ends (the daemon closes it) within 5 s of the client's half-close;
// - what a connection receives is a sequence of whole HTTP/1.1 answers (status line, headers,
//   Content-Length body), and nothing after one that says `Connection: close`;
// - on a connection that sent only well-formed requests, each one got exactly one answer, or the
//   daemon closed the connection: never more answers than requests, and fewer only
//   when the connection was closed (after a quiesce, or after a `Connection: close` the client
//   asked for); and none of them is an answer to a malformed request (400, 413, 431 and the like);
// - once the connections are closed, the loop holds no connection and ends when told to, and the
//   heap returns to what it was before the input (AddressSanitizer's count of allocated bytes,
//   within 512 KiB, once the first 100 inputs have warmed the runtime's caches up); libFuzzer's
//   leak check runs too.
//
// FUZZ_PRINT=1 prints each connection's requests and answers.

import BrokerCore
import Dispatch
import Foundation
import Logging

@testable import BrokerServer

#if canImport(Glibc)
    import Glibc
#endif

@_silgen_name("__sanitizer_get_current_allocated_bytes")
func sanitizerAllocatedBytes() -> Int

let printTrace = ProcessInfo.processInfo.environment["FUZZ_PRINT"] == "1"

let quiet = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
let router = Router(
    service: StubService(refreshDelay: .milliseconds(1)),
    policy: AccessPolicy(
        adminGroups: [4242], rules: [AccessRule(accounts: ["alice", "carol", "dave", "erin"], uids: [1000])]),
    logger: quiet)

let limits: ServerLimits = {
    var limits = ServerLimits()
    limits.maxHeaderBytes = 2048
    limits.maxBodyBytes = 4096
    limits.idleTimeout = .seconds(10)
    limits.requestTimeout = .seconds(5)
    return limits
}()

/// Well-formed requests: answered at once, later (through the mailbox), or with `Connection: close`.
let requests: [[UInt8]] = [
    "GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "GET /v1/accounts/alice/token?scope=skype HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/erin/token?scope=hotmail HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/erin/ticket HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/alice/token?scope=ssl&min_valid=7200 HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/bob/token?scope=ssl HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/carol/token?scope=ssl HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/dave/token?scope=ssl HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/nobody/token?scope=ssl HTTP/1.1\r\n\r\n",
    "GET /v1/accounts HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/alice HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/alice/ath?method=ssl-compact-ticket HTTP/1.1\r\n\r\n",
    "POST /v1/challenge HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n"
        + #"{"nonce":"22210219642164014968","x":1}"#,
    "POST /v1/challenge HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n26\r\n"
        + #"{"nonce":"22210219642164014968","x":1}"# + "\r\n0\r\n\r\n",
    "GET /v1/nowhere HTTP/1.1\r\n\r\n",
    "DELETE /v1/health HTTP/1.1\r\n\r\n",
    "GET /v1/accounts/erin/token?scope=ssl HTTP/1.1\r\nConnection: close\r\n\r\n",
].map { Array($0.utf8) }

/// Reads the script.
struct Script {
    let bytes: [UInt8]
    var index = 0
    mutating func next() -> UInt8? {
        guard index < bytes.count else { return nil }
        defer { index += 1 }
        return bytes[index]
    }
    mutating func next(_ fallback: UInt8) -> UInt8 { next() ?? fallback }
}

/// A client connection, and what is known of it.
final class Client {
    let fd: Int32
    var received: [UInt8] = []
    /// Whole, well-formed requests sent.
    var requests = 0
    /// Set once bytes were sent that are not whole requests: answers are then not counted.
    var freeform = false
    /// Set once a request asked for `Connection: close`.
    var askedClose = false
    var writeClosed = false
    /// Closed by the daemon (end of input or a reset).
    var ended = false
    /// Closed by the client without reading: nothing is checked.
    var abandoned = false
    var trace = ""

    init(fd: Int32) { self.fd = fd }

    /// Sends all of `bytes` unless the daemon stops reading or closes; returns whether all went.
    func send(_ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        let deadline = ServerLoop.monotonicNow() + 2_000_000_000
        while offset < bytes.endIndex {
            let sent = bytes[offset...].withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if sent > 0 {
                offset += sent
                continue
            }
            if sent < 0, errno == EINTR { continue }
            guard sent < 0, errno == EAGAIN || errno == EWOULDBLOCK, ServerLoop.monotonicNow() < deadline else {
                return false
            }
            // The daemon stopped reading until its answers are read: read them.
            drain(wait: 1)
        }
        return true
    }

    /// Reads what has arrived, waiting up to `wait` ms for something; notes the end.
    func drain(wait: Int32) {
        guard !ended, !abandoned else { return }
        var pollfd = Glibc.pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pollfd, 1, wait) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received += buffer[..<count]
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                ended = true
                return
            } else if errno != EINTR {
                return
            }
        }
    }
}

/// Splits what a connection received into answers; traps on anything that is not one.
func answers(_ bytes: [UInt8], freeform: Bool, trace: String) -> (count: Int, closeAnnounced: Bool) {
    // Answers a well-formed request never gets: the daemon misread it.
    let misread = ["400", "408", "411", "413", "414", "431", "501", "505"]
    var count = 0
    var index = 0
    let separator: [UInt8] = Array("\r\n\r\n".utf8)
    while index < bytes.count {
        guard bytes[index...].starts(with: "HTTP/1.1 ".utf8) || bytes[index...].starts(with: "HTTP/1.0 ".utf8) else {
            fail("not an answer at byte \(index)", bytes, trace)
        }
        guard let end = bytes[index...].firstRange(of: separator)?.upperBound else {
            fail("an answer's head is cut short at byte \(index)", bytes, trace)
        }
        let head = String(decoding: bytes[index..<end], as: UTF8.self).lowercased()
        let lines = head.split(separator: "\r\n")
        if !freeform, let status = lines.first?.split(separator: " ").dropFirst().first,
            misread.contains(String(status))
        {
            fail("a well-formed request was answered \(status)", bytes, trace)
        }
        var length = 0
        for line in lines where line.hasPrefix("content-length:") {
            length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? -1
        }
        // An answer to HEAD (which freeform bytes may ask) has a Content-Length and no body.
        let bodyEnd =
            bytes[end...].starts(with: "HTTP/1.".utf8) || (freeform && end + length > bytes.count)
            ? end : end + length
        guard length >= 0, bodyEnd <= bytes.count else {
            fail("an answer's body is cut short at byte \(index)", bytes, trace)
        }
        index = bodyEnd
        count += 1
        if lines.contains("connection: close") {
            guard index == bytes.count else { fail("bytes after an answer that closed", bytes, trace) }
            return (count, true)
        }
    }
    return (count, false)
}

func fail(_ reason: String, _ bytes: [UInt8], _ trace: String) -> Never {
    fatalError("\(reason)\n--- client sent:\n\(trace)\n--- client received:\n\(String(decoding: bytes, as: UTF8.self))")
}

/// A listening socket at a new path (the loop closes it when it ends).
let directory: String = {
    var template = Array("/tmp/fuzz-loop-XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { fatalError("mkdtemp: \(ServerLoop.errorText())") }
    atexit {
        unlink(directory + "/s")
        rmdir(directory)
    }
    return String(cString: made)
}()

func listener(_ path: String) -> Int32 {
    unlink(path)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard fd >= 0, bound == 0, Glibc.listen(fd, 64) == 0 else { fatalError("listen: \(ServerLoop.errorText())") }
    return fd
}

func connect(_ path: String) -> Int32 {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (i, byte) in path.utf8.enumerated() { raw[i] = byte }
    }
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    guard fd >= 0, connected == 0 else { fatalError("connect: \(ServerLoop.errorText())") }
    return fd
}

/// Runs `work` on the thread of a loop that has not ended, and waits for it.
func onLoop(_ loop: ServerLoop, _ work: @escaping @Sendable () -> Void) {
    let done = DispatchSemaphore(value: 0)
    loop.post(
        .execute {
            work()
            done.signal()
        })
    if done.wait(timeout: .now() + .seconds(5)) == .timedOut { fatalError("the loop stopped answering its mailbox") }
}

func run(_ input: [UInt8]) {
    var script = Script(bytes: input)
    let path = directory + "/s"
    let loop: ServerLoop
    do {
        loop = try ServerLoop(listener: listener(path), router: router, limits: limits, logger: quiet)
    } catch { fatalError("\(error)") }
    loop.start()
    let clients = (0..<(1 + Int(script.next(0) % 6))).map { _ in Client(fd: connect(path)) }
    var quiesced = false

    while let op = script.next() {
        let client = clients[Int(op >> 4) % clients.count]
        let usable = !client.abandoned && !client.writeClosed && !client.ended
        let kind = op & 0x0F
        // Nothing more is sent on a connection closed for writing, or closed.
        if !usable, kind != 9, kind != 10, kind != 11 { continue }
        switch kind {
        case 6:
            let count = 1 + Int(script.next(0) % 64)
            let bytes = (0..<count).compactMap { _ in script.next() }
            client.freeform = true
            client.trace += "[raw \(bytes.count)]" + String(decoding: bytes, as: UTF8.self)
            _ = client.send(bytes[...])
        case 7:
            let request = requests[Int(script.next(0)) % requests.count]
            let cut = Int(script.next(0)) % request.count
            client.freeform = true
            client.trace += "[part]" + String(decoding: request[..<cut], as: UTF8.self)
            _ = client.send(request[..<cut])
        case 8:
            client.trace += "[half-close]"
            shutdown(client.fd, Int32(SHUT_WR))
            client.writeClosed = true
        case 9 where !client.abandoned:
            client.trace += "[reset]"
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
            close(client.fd)
            client.abandoned = true
        case 10:
            client.drain(wait: 0)
        case 11 where !quiesced:
            if printTrace { print("[quiesce]") }
            loop.post(.quiesce(grace: .milliseconds(50)))
            quiesced = true
        case 0...5, 12...15:
            let request = requests[Int(script.next(0)) % requests.count]
            var cuts = (0..<Int(script.next(0) % 4)).map { _ in Int(script.next(0)) % request.count }.sorted()
            cuts.append(request.count)
            var start = 0
            var whole = true
            for cut in cuts where cut > start {
                if start > 0 { usleep(100) }
                whole = whole && client.send(request[start..<cut])
                start = cut
            }
            client.trace += String(decoding: request, as: UTF8.self)
            if whole { client.requests += 1 } else { client.freeform = true }
            if request.firstRange(of: "Connection: close".utf8) != nil { client.askedClose = true }
        default:
            break
        }
        if op & 1 == 1 { usleep(200) }
    }

    for client in clients where !client.abandoned {
        if !client.writeClosed { shutdown(client.fd, Int32(SHUT_WR)) }
        let deadline = ServerLoop.monotonicNow() + 5_000_000_000
        while !client.ended {
            guard ServerLoop.monotonicNow() < deadline else {
                fail("the connection stayed open 5 s after the client's half-close", client.received, client.trace)
            }
            client.drain(wait: 100)
        }
        close(client.fd)
        let (count, closeAnnounced) = answers(client.received, freeform: client.freeform, trace: client.trace)
        if printTrace {
            print("--- sent:\n\(client.trace)\n--- received:\n\(String(decoding: client.received, as: UTF8.self))")
        }
        guard !client.freeform else { continue }
        if count > client.requests {
            fail("\(count) answers to \(client.requests) requests", client.received, client.trace)
        }
        // Fewer answers than requests: the daemon closed the connection (it did: `ended`), which
        // is allowed after a quiesce, or after an answer with `Connection: close` to a request
        // that asked for it.
        if count < client.requests, !quiesced, !(closeAnnounced && client.askedClose) {
            fail("\(count) answers to \(client.requests) requests", client.received, client.trace)
        }
    }

    // Every connection is closed on the client's side: the loop must let go of them all (a
    // quiesced loop ends once it has).
    if !quiesced {
        nonisolated(unsafe) var held = -1
        let deadline = ServerLoop.monotonicNow() + 5_000_000_000
        while held != 0, ServerLoop.monotonicNow() < deadline {
            onLoop(loop) { held = loop.slots.reduce(0) { $0 + ($1 == nil ? 0 : 1) } + loop.streams.count }
            if held != 0 { usleep(1000) }
        }
        if held != 0 { fatalError("the loop still holds \(held) connections after every client closed") }
        loop.post(.quiesce(grace: .zero))
    }
    let finished = DispatchSemaphore(value: 0)
    Task {
        await loop.finish()
        finished.signal()
    }
    if finished.wait(timeout: .now() + .seconds(5)) == .timedOut { fatalError("the loop did not end after a quiesce") }
    if loop.slots.contains(where: { $0 != nil }) || !loop.streams.isEmpty {
        fatalError("the loop ended holding connections")
    }
}

nonisolated(unsafe) var inputs = 0

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzLoop(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let before = sanitizerAllocatedBytes()
    run(Array(UnsafeBufferPointer(start: data, count: size)))
    inputs += 1
    // The first inputs fill the runtime's caches. Tasks still finishing (a refresh answered after
    // its connection closed) free what they hold shortly after: give them a moment.
    guard inputs > 100 else { return 0 }
    let allowance = 512 << 10
    var allocated = sanitizerAllocatedBytes()
    var tries = 0
    while allocated > before + allowance, tries < 100 {
        usleep(2000)
        tries += 1
        allocated = sanitizerAllocatedBytes()
    }
    if allocated > before + allowance {
        fatalError("the heap grew from \(before) to \(allocated) bytes once the connections had closed")
    }
    return 0
}
