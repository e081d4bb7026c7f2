import BrokerCore
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Limits on what a client may send.
public struct ServerLimits: Sendable {
    public var maxHeaderBytes = 8 * 1024
    public var maxBodyBytes = 64 * 1024
    /// A connection that sends nothing for this long is closed.
    public var idleTimeout: TimeAmount = .seconds(10)
    /// A request must arrive whole, head and body, within this long of its first byte; else the
    /// connection is closed. The idle timeout restarts on every byte, so without this a client
    /// sending a byte now and then could hold a connection for ever.
    public var requestTimeout: TimeAmount = .seconds(5)
    /// Connections open at once. One more is answered 503 `temporarily_unavailable` and closed at
    /// once, so that the daemon's memory and descriptors stay bounded.
    public var maxConnections = 16384

    public init() {}
}

extension ChannelPipeline.SynchronousOperations {
    /// The handlers of one connection: the idle timer and the request clock, which adds the
    /// HTTP/1.1 codec and the broker's handler behind itself when the first byte arrives, so that
    /// a connection that sends nothing costs little (about 3 KiB instead of 6). The socket server
    /// and the fuzzer build the same pipeline.
    func addBrokerHandlers(router: Router, limits: ServerLimits) throws {
        try addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
        try addHandler(RequestBytesHandler(router: router, limits: limits))
    }
}

/// Fired before the HTTP decoder sees bytes, so that the request clock can start at a request's
/// first byte (the decoder reports a request only once its head is whole).
struct RequestBytesReceived {}

/// Sits before the HTTP decoder. Builds the rest of the pipeline on the first byte, then
/// announces every read to the broker's handler. Until then it closes the connection on the idle
/// timeout, on a half-close and on shutdown, as the broker's handler would.
final class RequestBytesHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Dropped once the pipeline is built.
    private var pending: (router: Router, limits: ServerLimits)?

    init(router: Router, limits: ServerLimits) {
        pending = (router, limits)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if let (router, limits) = pending {
            pending = nil
            do {
                let sync = context.pipeline.syncOperations
                try sync.configureHTTPServerPipeline(withPipeliningAssistance: true, withErrorHandling: false)
                try sync.addHandler(BrokerHTTPHandler(router: router, limits: limits))
            } catch {
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(RequestBytesReceived())
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard pending != nil else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // Nothing was received: nothing to answer.
        if event is IdleStateHandler.IdleStateEvent || event is ChannelShouldQuiesceEvent
            || (event as? ChannelEvent) == .inputClosed
        {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard pending != nil else {
            context.fireErrorCaught(error)
            return
        }
        context.close(promise: nil)
    }
}

/// One connection: reads the peer's credentials once, then answers requests in order.
/// Cached token reads are answered on the event loop without leaving it.
final class BrokerHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: Router
    private let limits: ServerLimits
    private var peer: Peer?
    private var peerRequested = false
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var rejected: APIResponse?
    private var busy = false
    private var quiescing = false
    /// The client shut down its writing side: answer what was asked, then close.
    private var inputClosed = false
    /// Armed by a request's first byte, cancelled by its end.
    private var deadline: Scheduled<Void>?
    private var lastWrite: EventLoopFuture<Void>?

    init(router: Router, limits: ServerLimits) {
        self.router = router
        self.limits = limits
    }

    /// Added to an active channel when its first byte arrives (see `RequestBytesHandler`).
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { readPeer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        readPeer(context: context)
        context.fireChannelActive()
    }

    private func readPeer(context: ChannelHandlerContext) {
        guard !peerRequested else { return }
        peerRequested = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        PeerCredentials.read(context.channel).whenSuccess { peer in
            let (handler, context) = bound.value
            handler.peer = peer
            if peer == nil { context.close(promise: nil) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
            rejected = nil
            let headerBytes = head.headers.reduce(head.uri.utf8.count) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
            if headerBytes > limits.maxHeaderBytes {
                rejected = APIResponse(
                    status: .requestHeaderFieldsTooLarge,
                    body: APIResponse.error(BrokerError(.badRequest, "request headers are larger than \(limits.maxHeaderBytes) bytes")).body,
                    close: true)
            } else if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > limits.maxBodyBytes {
                rejected = .error(BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"), close: true)
            }
            if let rejected {
                write(rejected, keepAlive: false, context: context)
            }
        case .body(var buffer):
            guard rejected == nil else { return }
            if body.count + buffer.readableBytes > limits.maxBodyBytes {
                rejected = .error(BrokerError(.payloadTooLarge, "request body is larger than \(limits.maxBodyBytes) bytes"), close: true)
                write(rejected!, keepAlive: false, context: context)
                return
            }
            body += buffer.readBytes(length: buffer.readableBytes) ?? []
        case .end:
            deadline?.cancel()
            deadline = nil
            guard rejected == nil, let head else { return }
            self.head = nil
            guard let peer else {
                write(.error(BrokerError(.forbidden, "peer credentials unavailable"), close: true), keepAlive: false, context: context)
                return
            }
            let request = Router.parse(method: head.method, uri: head.uri, body: body)
            let keepAlive = head.isKeepAlive
            switch router.route(request, peer: peer) {
            case .now(let response):
                write(response, keepAlive: keepAlive, context: context)
            case .later(let work):
                busy = true
                let promise = context.eventLoop.makePromise(of: APIResponse.self)
                promise.completeWithTask(work)
                let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess { response in
                    let (handler, context) = bound.value
                    handler.busy = false
                    handler.write(response, keepAlive: keepAlive && !handler.quiescing, context: context)
                }
            }
        }
    }

    private func write(_ response: APIResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let keep = keepAlive && !response.close && !quiescing && !inputClosed
        var head = HTTPResponseHead(version: .http1_1, status: response.status)
        head.headers.add(name: "Content-Type", value: response.contentType)
        head.headers.add(name: "Content-Length", value: String(response.body.count))
        if !keep { head.headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        lastWrite = done
        if !keep { done.whenComplete { _ in context.close(promise: nil) } }
    }

    /// Starts the request clock at a request's first byte.
    private func armDeadline(context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: limits.requestTimeout) {
            let (handler, context) = bound.value
            handler.deadline = nil
            // A request being answered is not cut short; the next byte starts a new clock.
            guard !handler.busy else { return }
            handler.router.logger.debug("request not received in time; closing", metadata: ["broker.event": "request_timeout"])
            context.close(promise: nil)
        }
    }

    /// Closes once what was written has gone out.
    private func closeAfterWrites(context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        (lastWrite ?? context.eventLoop.makeSucceededVoidFuture()).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is RequestBytesReceived {
            armDeadline(context: context)
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            // Half-closed: no request can start or finish any more. One being answered is
            // answered (and the connection closed after it); otherwise close now.
            inputClosed = true
            if !busy { closeAfterWrites(context: context) }
        } else if event is IdleStateHandler.IdleStateEvent, !busy {
            context.close(promise: nil)
        } else if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if !busy && head == nil { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is HTTPParserError, context.channel.isActive {
            let message = (error as? HTTPParserError) == .headerOverflow ? "request headers are too large" : "malformed HTTP request"
            let status: HTTPResponseStatus = (error as? HTTPParserError) == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            write(APIResponse(status: status, body: APIResponse.error(BrokerError(.badRequest, message)).body, close: true), keepAlive: false, context: context)
            return
        }
        context.close(promise: nil)
    }
}
