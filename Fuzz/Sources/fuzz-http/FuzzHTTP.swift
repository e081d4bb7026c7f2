// libFuzzer entry point: bytes from a client, through the daemon's real connection pipeline
// (idle timer, request clock, NIOHTTP1's decoder and pipelining handler, BrokerHTTPHandler,
// Router with the real access policy), against a stub engine.
//
// Input format: the bytes a client sends on one connection, with three additions:
// - a leading `!` makes the peer root (an admin); otherwise it is uid 1000, which the policy
//   lets read alice, carol, dave and erin but not bob;
// - a leading `~` (after the `!`, if any) lets 60 seconds pass (on the channel's own clock)
//   after the input is sent, so that the idle and request timers fire;
// - each 0xFF byte splits the input into separate reads.
// After the input the client half-closes its socket.
//
// Checked on every input, besides crashes and NIO's own assertions (the build keeps them):
// - the connection is closed after the half-close (libFuzzer's -timeout catches a hang);
// - the answer, if any, starts with `HTTP/1.1 `;
// - uid 1000 never receives one of bob's values.
//
// FUZZ_PRINT=1 prints the answers: `FUZZ_PRINT=1 .build-fuzz/release/fuzz-http Fuzz/corpus/token`.

import BrokerCore
import BrokerEngine
@testable import BrokerServer
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOEmbedded

/// Who is on the other end, as SO_PEERCRED would tell.
nonisolated(unsafe) var fuzzPeerUID: UInt32 = 1000

/// The testing channel answers SO_PEERCRED and SO_PEERGROUPS as a Unix socket would.
extension NIOAsyncTestingChannel: @retroactive SocketOptionProvider {
    public func unsafeSetSocketOption<Value: Sendable>(level: SocketOptionLevel, name: SocketOptionName, value: Value) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }

    public func unsafeSetSocketOption<Value: Sendable>(
        level: NIOBSDSocket.OptionLevel, name: NIOBSDSocket.Option, value: Value
    ) -> EventLoopFuture<Void> {
        eventLoop.makeSucceededVoidFuture()
    }

    public func unsafeGetSocketOption<Value: Sendable>(level: SocketOptionLevel, name: SocketOptionName) -> EventLoopFuture<Value> {
        if Value.self == UCred.self {
            let uid = fuzzPeerUID
            return eventLoop.makeSucceededFuture(UCred(pid: 0, uid: uid, gid: uid) as! Value)
        }
        if Value.self == PeerGroups.self {
            var groups = PeerGroups()
            groups.gids.0 = 0x0000_0064_0000_0018  // groups 24 and 100
            return eventLoop.makeSucceededFuture(groups as! Value)
        }
        return eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    public func unsafeGetSocketOption<Value: Sendable>(level: NIOBSDSocket.OptionLevel, name: NIOBSDSocket.Option) -> EventLoopFuture<Value> {
        unsafeGetSocketOption(level: SocketOptionLevel(level.rawValue), name: SocketOptionName(name.rawValue))
    }
}

let router = Router(
    engine: BrokerEngine(),
    policy: AccessPolicy(adminGroups: [4242], rules: [AccessRule(accounts: ["alice", "carol", "dave", "erin"], uids: [1000])]),
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
func exchange(_ input: [UInt8], root: Bool, wait: Bool) async throws -> [UInt8] {
    fuzzPeerUID = root ? 0 : 1000
    let channel = NIOAsyncTestingChannel()
    try await channel.testingEventLoop.executeInContext {
        try channel.pipeline.syncOperations.addBrokerHandlers(router: router, limits: limits)
    }
    try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/run/tokenbroker/fuzz.sock")).get()
    for chunk in input.split(separator: 0xFF, omittingEmptySubsequences: true) where channel.isActive {
        try? await channel.writeInbound(ByteBuffer(bytes: chunk))
    }
    if wait { await channel.testingEventLoop.advanceTime(by: .seconds(60)) }
    if channel.isActive { channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
    // Answers computed off the loop arrive later; the connection closes after the last one.
    try await channel.closeFuture.get()
    var output: [UInt8] = []
    while let part = try await channel.readOutbound(as: IOData.self) {
        if case .byteBuffer(let buffer) = part { output += buffer.readableBytesView }
    }
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
    nonisolated(unsafe) var result: Result<[UInt8], any Error> = .success([])
    Task {
        do { result = .success(try await exchange(bytes, root: root, wait: wait)) } catch { result = .failure(error) }
        done.signal()
    }
    done.wait()
    let output: [UInt8]
    switch result {
    case .success(let bytes): output = bytes
    case .failure(let error): fatalError("the harness failed: \(error)")
    }
    if printAnswers { print(String(decoding: output, as: UTF8.self)) }
    if !output.isEmpty, !output.starts(with: Array("HTTP/1.1 ".utf8)) {
        fatalError("an answer that is not HTTP/1.1: \(String(decoding: output.prefix(80), as: UTF8.self))")
    }
    if !root, output.count >= BrokerEngine.bobSecret.utf8.count,
        String(decoding: output, as: UTF8.self).contains(BrokerEngine.bobSecret)
    {
        fatalError("uid 1000 was served one of bob's values:\n\(String(decoding: output, as: UTF8.self))")
    }
    return 0
}
