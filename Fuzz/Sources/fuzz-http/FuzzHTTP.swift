// libFuzzer entry point: bytes from a client, through the daemon's real connection state
// machine (`HTTPConnection`: the request parser, limits, timers, pipelining and keep-alive), the
// Router and the real access policy, against a stub credential service (StubService.swift). The socket around it
// (`ServerLoop`) is left out: it only moves bytes between the socket and this type.
//
// Input format: the bytes a client sends on one connection, with three additions:
// - a leading `!` makes the peer root (an admin); otherwise it is uid 1000, which the policy
//   lets read alice, carol, dave and erin but not bob;
// - a leading `~` (after the `!`, if any) lets 60 seconds pass after the input is sent, so that
//   the idle and request timers run out;
// - each 0xFF byte splits the input into separate reads.
// After the input the client half-closes its socket. An answer computed asynchronously is
// delivered after the reads that follow it, as it would be when a refresh takes a while.
//
// Checked on every input, besides crashes and Swift's runtime checks:
// - the connection is closed after the half-close (or when its timer runs out);
// - the answer, if any, starts with `HTTP/1.1 `;
// - uid 1000 never receives one of bob's values, nor an event about bob.
//
// FUZZ_PRINT=1 prints the answers: `FUZZ_PRINT=1 .build-fuzz/release/fuzz-http Fuzz/corpus/token`.

import BrokerCore
import Dispatch
import Foundation
import Logging

@testable import BrokerServer

let router = Router(
    service: StubService(),
    policy: AccessPolicy(
        adminGroups: [4242], rules: [AccessRule(accounts: ["alice", "carol", "dave", "erin"], uids: [1000])]),
    logger: Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() }))

let limits: ServerLimits = {
    var limits = ServerLimits()
    limits.maxHeaderBytes = 2048
    limits.maxBodyBytes = 4096
    limits.idleTimeout = .seconds(10)
    limits.requestTimeout = .seconds(5)
    return limits
}()

/// One connection's worth of input; returns what the server wrote.
func exchange(_ input: [UInt8], root: Bool, wait: Bool) async -> [UInt8] {
    let uid: UInt32 = root ? 0 : 1000
    var now: UInt64 = 1_000_000_000
    let connection = HTTPConnection(
        router: router, limits: limits, peer: Peer(pid: 1, uid: uid, gid: uid, groups: [24, 100]), now: now,
        repeats: RepeatedReads())
    var output: [UInt8] = []
    var closed = false
    var waiting: (@Sendable () async -> APIResponse)?

    func take(_ next: HTTPConnection.Next) {
        switch next {
        case .proceed:
            // The server writes what was produced and, on the connection's next turn, asks for
            // the answers held back.
            while connection.moreToAnswer {
                let next = connection.process(now: now, into: &output)
                guard case .proceed = next else { return take(next) }
            }
        case .close: closed = true
        case .later(let work):
            precondition(waiting == nil, "a second answer was started while one was outstanding")
            waiting = work
        case .stream(let subscription):
            // The event loop takes an event stream over; it starts with a `state` event per
            // account the peer may read.
            for (index, state) in router.snapshot(subscription).enumerated() {
                output += EventFrames.frame("state", id: UInt64(index + 1), data: state)
            }
            closed = true
        }
    }
    /// Delivers outstanding answers until none is left.
    func settle() async {
        while let work = waiting, !closed {
            waiting = nil
            let response = await work()
            take(connection.complete(response, now: now, into: &output))
        }
    }

    for chunk in input.split(separator: 0xFF, omittingEmptySubsequences: true) where !closed {
        now += 1_000_000
        take(chunk.withUnsafeBytes { connection.receive($0, now: now, into: &output) })
    }
    await settle()
    if wait, !closed {
        now += 60_000_000_000
        if connection.expired(now: now) { closed = true }
    }
    if !closed {
        take(connection.inputDidClose(now: now, into: &output))
        await settle()
    }
    precondition(closed, "the connection stayed open after the client's half-close")
    return output
}

/// FUZZ_PRINT=1 prints every answer (to look at what an input does: `fuzz-http -runs=1 FILE`).
let printAnswers = ProcessInfo.processInfo.environment["FUZZ_PRINT"] == "1"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    var input = Array(UnsafeBufferPointer(start: data, count: size))
    let root = input.first == UInt8(ascii: "!")
    if root { input.removeFirst() }
    let wait = input.first == UInt8(ascii: "~")
    if wait { input.removeFirst() }
    let bytes = input
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var output: [UInt8] = []
    Task {
        output = await exchange(bytes, root: root, wait: wait)
        done.signal()
    }
    done.wait()
    if printAnswers { print(String(decoding: output, as: UTF8.self)) }
    if !output.isEmpty, !output.starts(with: Array("HTTP/1.1 ".utf8)) {
        fatalError("an answer that is not HTTP/1.1: \(String(decoding: output.prefix(80), as: UTF8.self))")
    }
    if !root, output.count >= StubService.bobSecret.utf8.count,
        String(decoding: output, as: UTF8.self).contains(StubService.bobSecret)
    {
        fatalError("uid 1000 was served one of bob's values:\n\(String(decoding: output, as: UTF8.self))")
    }
    if !root, String(decoding: output, as: UTF8.self).contains(#""account":"bob""#) {
        fatalError("uid 1000 was sent an event about bob:\n\(String(decoding: output, as: UTF8.self))")
    }
    return 0
}
