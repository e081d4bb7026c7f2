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

    public init() {}
}

/// One connection: reads the peer's credentials once, then answers requests in order.
/// Cached token reads are answered on the event loop without leaving it.
final class BrokerHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: Router
    private let limits: ServerLimits
    private var peer: Peer?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var rejected: APIResponse?
    private var busy = false
    private var quiescing = false

    init(router: Router, limits: ServerLimits) {
        self.router = router
        self.limits = limits
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        PeerCredentials.read(context.channel).whenSuccess { peer in
            let (handler, context) = bound.value
            handler.peer = peer
            if peer == nil { context.close(promise: nil) }
        }
        context.fireChannelActive()
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
        let keep = keepAlive && !response.close && !quiescing
        var head = HTTPResponseHead(version: .http1_1, status: response.status)
        head.headers.add(name: "Content-Type", value: "application/json")
        head.headers.add(name: "Content-Length", value: String(response.body.count))
        if !keep { head.headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keep { done.whenComplete { _ in context.close(promise: nil) } }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent, !busy {
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
