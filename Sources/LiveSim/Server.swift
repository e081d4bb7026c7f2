import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What the channel handler should do with a request.
enum SimAction {
    case respond(SimResponse)
    case delayed(TimeAmount, () -> SimResponse)
    case reset
    case hang
    case truncate(SimResponse)
}

/// Anything that turns a request into an action: the identity endpoints or the control API.
protocol SimApplication: Sendable {
    func handle(_ request: SimRequest) -> (action: SimAction, endpoint: String)
    func log(_ request: SimRequest, endpoint: String, response: SimResponse?, outcome: String, elapsed: Double)
}

/// HTTP/1.1 on top of TLS or plain TCP: collects a request and performs the application's action.
final class SimHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBody = 1 << 20

    private let app: any SimApplication
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var tooLarge = false
    private var hanging = false

    init(app: any SimApplication) { self.app = app }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body.removeAll(keepingCapacity: true)
            tooLarge = false
        case .body(var buffer):
            if body.count + buffer.readableBytes > Self.maxBody {
                tooLarge = true
            } else {
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            }
        case .end:
            guard let head, !hanging else { return }
            self.head = nil
            let started = DispatchTime.now().uptimeNanoseconds
            let (path, query) = Self.split(head.uri)
            let request = SimRequest(method: head.method, path: path, query: query, headers: head.headers, body: body)
            if tooLarge {
                perform(
                    .respond(.text(.payloadTooLarge, "request body too large")), request: request, endpoint: "-",
                    keepAlive: false, context: context, started: started)
                return
            }
            let (action, endpoint) = app.handle(request)
            perform(
                action, request: request, endpoint: endpoint, keepAlive: head.isKeepAlive, context: context,
                started: started)
        }
    }

    static func split(_ uri: String) -> (String, String) {
        guard let q = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<q]), String(uri[uri.index(after: q)...]))
    }

    private func elapsedMs(_ started: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - started) / 1e6 }

    private func perform(
        _ action: SimAction, request: SimRequest, endpoint: String, keepAlive: Bool, context: ChannelHandlerContext,
        started: UInt64
    ) {
        switch action {
        case .respond(let response):
            write(response, keepAlive: keepAlive, context: context)
            app.log(request, endpoint: endpoint, response: response, outcome: "", elapsed: elapsedMs(started))
        case .delayed(let delay, let make):
            let loopBound = NIOLoopBound((self, context, make), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: delay) {
                let (handler, context, make) = loopBound.value
                let response = make()
                handler.write(response, keepAlive: keepAlive, context: context)
                handler.app.log(
                    request, endpoint: endpoint, response: response, outcome: "delayed",
                    elapsed: handler.elapsedMs(started))
            }
        case .reset:
            app.log(request, endpoint: endpoint, response: nil, outcome: "reset", elapsed: elapsedMs(started))
            // SO_LINGER with a zero timeout makes close() send a RST instead of a FIN; the TLS
            // handler goes first so that no close_notify is sent.
            let channel = context.channel
            let provider = channel as? any SocketOptionProvider
            let setLinger =
                provider?.setSoLinger(linger(l_onoff: 1, l_linger: 0)) ?? channel.eventLoop.makeSucceededVoidFuture()
            let pipeline = context.pipeline
            setLinger.whenComplete { _ in
                let tls = try? pipeline.syncOperations.handler(type: NIOSSLServerHandler.self)
                if let tls {
                    pipeline.syncOperations.removeHandler(tls).whenComplete { _ in channel.close(promise: nil) }
                } else {
                    channel.close(promise: nil)
                }
            }
        case .hang:
            hanging = true
            app.log(request, endpoint: endpoint, response: nil, outcome: "hang", elapsed: elapsedMs(started))
        case .truncate(let response):
            var head = HTTPResponseHead(version: .http1_1, status: response.status)
            for (name, value) in response.headers { head.headers.add(name: name, value: value) }
            head.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            let half = response.body.prefix(response.body.count / 2)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: half)))))
                .whenComplete { _ in context.close(promise: nil) }
            app.log(request, endpoint: endpoint, response: response, outcome: "truncated", elapsed: elapsedMs(started))
        }
    }

    private func write(_ response: SimResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var head = HTTPResponseHead(version: .http1_1, status: response.status)
        for (name, value) in response.headers { head.headers.add(name: name, value: value) }
        head.headers.replaceOrAdd(name: "Content-Length", value: String(response.body.count))
        head.headers.replaceOrAdd(name: "Cache-Control", value: "no-store, no-cache")
        if !keepAlive { head.headers.replaceOrAdd(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))),
                promise: nil)
        }
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { done.whenComplete { _ in context.close(promise: nil) } }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Binds a listener for an application, with or without TLS.
enum SimListener {
    static func bind(
        group: any EventLoopGroup, host: String, port: Int, tls: NIOSSLContext?, app: any SimApplication
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SimHTTPHandler(app: app))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}
