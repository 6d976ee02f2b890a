import NIOCore
import NIOHTTP1

/// What an upstream call reports, on its event loop.
protocol UpstreamReceiver: AnyObject {
    /// The whole request was written to the provider's socket.
    func upstreamSent()
    func upstreamHead(_ head: HTTPResponseHead)
    /// A part of the body; a returned future holds further reads from the provider until it completes (back-pressure).
    func upstreamBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void>?
    /// The provider's bytes read so far were all reported: what was forwarded can be flushed (one write for many events).
    func upstreamReadComplete()
    func upstreamFinished()
    func upstreamFailed(_ failure: UpstreamFailure)
}

/// Why an upstream call failed.
enum UpstreamFailure: Error, CustomStringConvertible {
    case connect(String)
    /// The provider closed the connection or it broke; `answered` says whether any of the answer had arrived.
    case connectionLost(answered: Bool)
    /// The provider stayed silent longer than the read timeout.
    case timeout(seconds: Int64)
    /// The connection failed (a TLS handshake refused, a reset): what went wrong.
    case failed(String)

    var description: String {
        switch self {
        case .connect(let reason): "could not connect: \(reason)"
        case .connectionLost(let answered): answered ? "the connection closed before the answer ended" : "the connection closed before any answer"
        case .timeout(let seconds): "no answer for \(seconds) s"
        case .failed(let reason): reason
        }
    }
}

/// One keep-alive HTTP/1.1 connection to a provider: runs one call at a time, reports it to its receiver, and holds
/// reads while the agent has not taken what was forwarded.
final class UpstreamConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    private var context: ChannelHandlerContext?
    private var receiver: (any UpstreamReceiver)?
    private var answered = false
    private var keepAlive = true
    private var holdingReads = false
    private var readWanted = false
    private var timer: Scheduled<Void>?
    private var lastActivity = NIODeadline.now()
    private let readTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    /// Called when a call ended cleanly and the connection can serve the next one.
    var onReusable: (() -> Void)?

    /// - Parameter idleTimeout: how long the connection may wait for its next call before it is closed.
    init(readTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.readTimeout = readTimeout
        self.idleTimeout = idleTimeout
    }

    /// Whether the connection can take a call.
    var isIdle: Bool { receiver == nil && context?.channel.isActive == true }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        self.context = nil
    }

    /// Sends a request; its answer goes to `receiver`.
    func send(head: HTTPRequestHead, body: ByteBuffer, to receiver: any UpstreamReceiver) {
        guard let context else { return receiver.upstreamFailed(.connectionLost(answered: false)) }
        self.receiver = receiver
        answered = false
        keepAlive = true
        armTimer(context: context)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { [weak self] result in
            guard case .success = result, let receiver = self?.receiver else { return }
            receiver.upstreamSent()
        }
    }

    /// Abandons the call in progress (the agent left, or the stream was cut): the connection is closed.
    func cancel() {
        receiver = nil
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let receiver else { return }
        lastActivity = context.eventLoop.now
        switch unwrapInboundIn(data) {
        case .head(let head):
            answered = true
            keepAlive = head.isKeepAlive
            receiver.upstreamHead(head)
        case .body(let buffer):
            if let taken = receiver.upstreamBody(buffer) {
                holdingReads = true  // released at once when the future is already complete
                taken.assumeIsolated().whenComplete { [weak self] _ in self?.releaseReads() }
            }
        case .end:
            timer?.cancel()
            self.receiver = nil
            if keepAlive {
                timer = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [weak self] in
                    if self?.receiver == nil { context.close(promise: nil) }
                }
                onReusable?()
            } else {
                context.close(promise: nil)
            }
            receiver.upstreamFinished()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        receiver?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if holdingReads {
            readWanted = true
        } else {
            context.read()
        }
    }

    private func releaseReads() {
        holdingReads = false
        if readWanted, let context {
            readWanted = false
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        fail(.connectionLost(answered: answered))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !answered { fail(.failed(String(describing: error).prefix(200).description)) }
        context.close(promise: nil)
    }

    private func fail(_ failure: UpstreamFailure) {
        guard let receiver else { return }
        self.receiver = nil
        receiver.upstreamFailed(failure)
    }

    /// One timer per call, moved on only when it fires (a stream's every chunk would otherwise schedule a new one).
    private func armTimer(context: ChannelHandlerContext, in delay: TimeAmount? = nil) {
        timer?.cancel()
        lastActivity = context.eventLoop.now
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay ?? readTimeout) { [weak self] in
            guard let self, self.receiver != nil else { return }
            let silent = context.eventLoop.now - self.lastActivity
            if silent < self.readTimeout { return self.armTimer(context: context, in: self.readTimeout - silent, keepingActivity: true) }
            self.fail(.timeout(seconds: self.readTimeout.nanoseconds / 1_000_000_000))
            context.close(promise: nil)
        }
    }

    private func armTimer(context: ChannelHandlerContext, in delay: TimeAmount, keepingActivity: Bool) {
        let activity = lastActivity
        armTimer(context: context, in: delay)
        lastActivity = activity
    }
}
