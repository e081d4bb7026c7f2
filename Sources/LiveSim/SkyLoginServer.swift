import Foundation
import Logging
import NIOCore
import NIOPosix

/// One connection to the SkyLogin login server (§6 of the notes):
///
///     [16 03 01 00 00]                          -> 17 03 01 00 00 (the hello is optional)
///     16 03 01 BE16(len) record 1 (SK, RSA)
///     17 03 01 BE16(len) record 2 (AES-CTR, CRC) -> one reply record (≤ 4096 bytes, one write), close
///
/// Every length is bounded, a connection that does not finish its request in time is closed,
/// and a request that cannot be read is refused (code 4202) or, before the session key is known,
/// closed without an answer.
final class SkyLoginHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maxRecord1 = 2048
    static let maxRecord2 = 32 * 1024
    /// A `hang` fault keeps the connection at most this long.
    static let hangLimit = TimeAmount.minutes(10)

    private enum Phase { case record1, record2, answered }

    private let state: SimState
    private let keys: SkyLoginKeys
    private let logger: Logger?
    private let requestTimeout: TimeAmount
    private var phase = Phase.record1
    private var helloSeen = false
    private var buffer: [UInt8] = []
    private var aesKey: [UInt8]?
    private var timer: Scheduled<Void>?

    init(state: SimState, keys: SkyLoginKeys, logger: Logger?, timeout: Double) {
        self.state = state
        self.keys = keys
        self.logger = logger
        self.requestTimeout = .milliseconds(Int64(max(0.001, timeout) * 1000))
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(requestTimeout, context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    private func arm(_ delay: TimeAmount, context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: delay) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard phase != .answered else { return }
        var chunk = unwrapInboundIn(data)
        buffer += chunk.readBytes(length: chunk.readableBytes) ?? []
        while phase != .answered, buffer.count >= 5 {
            let magic = Array(buffer[0..<3])
            let length = Int(buffer[3]) << 8 | Int(buffer[4])
            switch phase {
            case .record1:
                if !helloSeen, Array(buffer.prefix(5)) == SkyRecord.hello {
                    helloSeen = true
                    buffer.removeFirst(5)
                    context.writeAndFlush(
                        wrapOutboundOut(context.channel.allocator.buffer(bytes: SkyRecord.helloReply)),
                        promise: nil)
                    continue
                }
                guard magic == SkyRecord.handshake, (1...Self.maxRecord1).contains(length) else {
                    return abandon("record 1 is not 16 03 01 with a length of 1-\(Self.maxRecord1)", context: context)
                }
                guard buffer.count >= 5 + length else { return }
                let body = Array(buffer[5..<(5 + length)])
                buffer.removeFirst(5 + length)
                do throws(SkyObjects.Malformed) {
                    aesKey = SkyCipher.aesKey(
                        sessionKey: try SkyRecord.openRecord1(body: body, sessionKey: keys.session))
                } catch {
                    return abandon(error.reason, context: context)
                }
                phase = .record2
            case .record2:
                guard let aesKey else { return abandon("no session key", context: context) }
                guard magic == SkyRecord.data, (3...Self.maxRecord2).contains(length) else {
                    return answerMalformed(
                        "record 2 is not 17 03 01 with a length of 3-\(Self.maxRecord2)", aesKey: aesKey,
                        context: context)
                }
                guard buffer.count >= 5 + length else { return }
                let body = Array(buffer[5..<(5 + length)])
                buffer = []
                phase = .answered
                timer?.cancel()
                respond(body: body, aesKey: aesKey, context: context)
            case .answered:
                return
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: - Answers

    /// Closes without an answer: nothing can be encrypted before the session key is known.
    private func abandon(_ reason: String, context: ChannelHandlerContext) {
        phase = .answered
        buffer = []
        timer?.cancel()
        state.withLock { world in
            world.counters.requests[SimEndpoint.skylogin.rawValue, default: 0] += 1
            world.counters.loginFailures["skylogin_malformed", default: 0] += 1
        }
        log(outcome: "closed", code: nil, account: nil, reason: reason, fault: nil)
        context.close(promise: nil)
    }

    private func answerMalformed(_ reason: String, aesKey: [UInt8], context: ChannelHandlerContext) {
        phase = .answered
        buffer = []
        timer?.cancel()
        state.withLock { world in
            world.counters.requests[SimEndpoint.skylogin.rawValue, default: 0] += 1
            world.counters.loginFailures["skylogin_malformed", default: 0] += 1
        }
        let outcome = SkyLoginService.Outcome.refused(SkyRecord.malformedRequest, reason)
        send(outcome, aesKey: aesKey, fault: nil, context: context)
    }

    private func respond(body: [UInt8], aesKey: [UInt8], context: ChannelHandlerContext) {
        let now = Date()
        let fault = state.withLock { world -> FaultRule? in
            world.counters.requests[SimEndpoint.skylogin.rawValue, default: 0] += 1
            return world.takeFault(endpoint: SimEndpoint.skylogin.rawValue, now: now)
        }
        let request: SkyLoginRequest
        do throws(SkyObjects.Malformed) {
            request = try SkyLoginRequest.parse(try SkyRecord.openRecord2(body: body, aesKey: aesKey))
        } catch {
            state.withLock { $0.counters.loginFailures["skylogin_malformed", default: 0] += 1 }
            let outcome = SkyLoginService.Outcome.refused(SkyRecord.malformedRequest, error.reason)
            return send(outcome, aesKey: aesKey, fault: fault?.kind, context: context)
        }
        let login = { [state, keys] (options: SkyLoginService.Options) in
            SkyLoginService.login(request, state: state, keys: keys, options: options, now: now)
        }
        guard let fault else { return send(login(.init()), aesKey: aesKey, fault: nil, context: context) }
        switch fault.kind {
        case .latency:
            let loopBound = NIOLoopBound((self, context, login), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(Int64(fault.latencyMs ?? 1000))) {
                let (handler, context, login) = loopBound.value
                handler.send(login(.init()), aesKey: aesKey, fault: .latency, context: context)
            }
        case .refuse, .status, .rateLimit, .soapFault:
            let code = UInt32(clamping: fault.code ?? Int(SkyRecord.badCredentials))
            send(.refused(code, "refused by an injected fault"), aesKey: aesKey, fault: fault.kind, context: context)
        case .expired:
            send(login(.init(expired: true)), aesKey: aesKey, fault: .expired, context: context)
        case .untrusted:
            send(login(.init(untrusted: true)), aesKey: aesKey, fault: .untrusted, context: context)
        case .garbage, .malformed:
            let garbage = TokenFactory.randomBytes(Int.random(in: 64...512))
            log(outcome: "garbage", code: nil, account: nil, reason: nil, fault: fault.kind)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: garbage))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .truncate:
            let outcome = login(.init())
            let record = SkyLoginService.reply(outcome, aesKey: aesKey) ?? []
            log(outcome: "truncated", code: outcome.code, account: outcome.account, reason: nil, fault: .truncate)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: record.prefix(record.count / 2))))
                .whenComplete { _ in channel.close(promise: nil) }
        case .reset:
            if fault.afterProcessing == true { _ = login(.init()) }
            log(outcome: "reset", code: nil, account: nil, reason: nil, fault: .reset)
            reset(context: context)
        case .hang:
            if fault.afterProcessing == true { _ = login(.init()) }
            log(outcome: "hang", code: nil, account: nil, reason: nil, fault: .hang)
            arm(Self.hangLimit, context: context)
        }
    }

    /// One reply record in one write, then close.
    private func send(
        _ outcome: SkyLoginService.Outcome, aesKey: [UInt8], fault: FaultKind?, context: ChannelHandlerContext
    ) {
        let channel = context.channel
        guard let record = SkyLoginService.reply(outcome, aesKey: aesKey), record.count <= SkyRecord.maxReply else {
            log(outcome: "closed", code: outcome.code, account: outcome.account, reason: "no reply", fault: fault)
            channel.close(promise: nil)
            return
        }
        log(
            outcome: outcome.code == SkyRecord.loginOK ? "ok" : "refused", code: outcome.code,
            account: outcome.account, reason: outcome.reason, fault: fault)
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(bytes: record))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// SO_LINGER with a zero timeout makes close() send a RST instead of a FIN.
    private func reset(context: ChannelHandlerContext) {
        let channel = context.channel
        let provider = channel as? any SocketOptionProvider
        let setLinger =
            provider?.setSoLinger(linger(l_onoff: 1, l_linger: 0)) ?? channel.eventLoop.makeSucceededVoidFuture()
        setLinger.whenComplete { _ in channel.close(promise: nil) }
    }

    private func log(outcome: String, code: UInt32?, account: String?, reason: String?, fault: FaultKind?) {
        guard let logger else { return }
        var metadata: Logger.Metadata = ["outcome": "\(outcome)"]
        if let code { metadata["code"] = "\(code)" }
        if let account { metadata["account"] = "\(account)" }
        if let reason { metadata["reason"] = "\(reason)" }
        if let fault { metadata["fault"] = "\(fault.rawValue)" }
        logger.info("skylogin", metadata: metadata)
    }
}

enum SkyLoginListener {
    static func bind(
        group: any EventLoopGroup, host: String, port: Int, state: SimState, keys: SkyLoginKeys, logger: Logger?,
        timeout: Double
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        SkyLoginHandler(state: state, keys: keys, logger: logger, timeout: timeout))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}
