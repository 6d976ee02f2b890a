import NIOCore
import NIOHTTP1

/// One agent connection to the proxy: reads each request whole (within the body limit and the read timeout), hands
/// it to a `ProxyExchange` on this connection's event loop and writes its answer or its stream.
///
/// Everything here runs on the connection's event loop, upstream call included: no thread hop on the way.
final class ProxyConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer)
        case tooLarge(HTTPRequestHead)
        case answering(HTTPRequestHead, ProxyExchange?)
    }

    private let proxy: MeteringProxy
    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// Closes a connection that sends a request too slowly, or stays idle between requests too long.
    private var timer: Scheduled<Void>?

    /// The sandbox whose keys this connection brokers, if it does.
    private let brokeredListener: BrokeredListener?

    init(proxy: MeteringProxy, brokeredListener: BrokeredListener? = nil) {
        self.proxy = proxy
        self.brokeredListener = brokeredListener
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        arm(after: proxy.configuration.idleTimeAmount, context: context, answering: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let limit = proxy.configuration.maximumBodyBytes
        switch unwrapInboundIn(data) {
        case .head(let head):
            arm(after: proxy.configuration.requestReadTimeAmount, context: context, answering: head)
            let declared = head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
            state = declared > limit ? .tooLarge(head) : .receiving(head, context.channel.allocator.buffer(capacity: declared))
        case .body(var part):
            guard case .receiving(let head, var body) = state else { return }
            if body.readableBytes + part.readableBytes > limit {
                state = .tooLarge(head)
            } else {
                state = .idle  // the buffer is uniquely referenced while it grows
                body.writeBuffer(&part)
                state = .receiving(head, body)
            }
        case .end:
            timer?.cancel()
            switch state {
            case .receiving(let head, let body):
                let exchange = ProxyExchange(
                    proxy: proxy, head: head, body: body, connection: self, eventLoop: context.eventLoop, brokeredListener: brokeredListener)
                state = .answering(head, exchange)
                exchange.start()
            case .tooLarge(let head):
                state = .answering(head, nil)
                let format = ProxyExchange.format(path: head.uri, headers: head.headers)
                answer(
                    format.error(.payloadTooLarge, type: format.invalidRequestError, message: "request body larger than \(limit) bytes")
                )
            case .idle, .answering:
                break
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if case .answering(_, let exchange?) = state { exchange.clientGone() }
        state = .idle
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Answers, called by the exchange

    /// Writes a whole answer and ends the exchange.
    func answer(_ answer: ProxyAnswer) {
        guard let context, case .answering(let request, _) = state else { return }
        var headers = answer.headers
        headers.replaceOrAdd(name: "content-length", value: String(answer.body.readableBytes))
        if !request.isKeepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: answer.status, headers: headers))), promise: nil)
        if answer.body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(answer.body))), promise: nil) }
        end(context: context, request: request)
    }

    /// Starts a streamed answer (chunked).
    func beginStream(status: HTTPResponseStatus, headers: HTTPHeaders) {
        guard let context, case .answering(let request, _) = state else { return }
        var headers = headers
        if !request.isKeepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
    }

    /// Writes stream events (flushed by `flush`, once per read from the provider); the future completes once the
    /// agent's socket took them, so a slow agent holds the provider's stream back (back-pressure).
    func send(_ events: [ByteBuffer]) -> EventLoopFuture<Void>? {
        guard let context, case .answering = state, !events.isEmpty else { return nil }
        for event in events.dropLast() { context.write(wrapOutboundOut(.body(.byteBuffer(event))), promise: nil) }
        return context.write(wrapOutboundOut(.body(.byteBuffer(events[events.count - 1]))))
    }

    /// Sends what `send` wrote.
    func flush() {
        context?.flush()
    }

    /// Ends a streamed answer and the exchange.
    func endStream() {
        guard let context, case .answering(let request, _) = state else { return }
        end(context: context, request: request)
    }

    private func end(context: ChannelHandlerContext, request: HTTPRequestHead) {
        state = .idle
        if request.isKeepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            arm(after: proxy.configuration.idleTimeAmount, context: context, answering: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }

    /// Closes the connection after `delay`: with 408 when a request was being read, silently when it was idle.
    private func arm(after delay: TimeAmount, context: ChannelHandlerContext, answering request: HTTPRequestHead?) {
        timer?.cancel()
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [self] in
            switch state {
            case .idle:
                context.close(promise: nil)
            case .receiving(let head, _), .tooLarge(let head):
                state = .answering(head, nil)
                let format = ProxyExchange.format(path: head.uri, headers: head.headers)
                var timeout = format.error(
                    .requestTimeout, type: format.invalidRequestError,
                    message: "the request was not received within \(delay.nanoseconds / 1_000_000_000) s"
                )
                timeout.headers.replaceOrAdd(name: "connection", value: "close")
                answer(timeout)
                context.close(promise: nil)
            case .answering:
                break
            }
        }
    }
}
