import NIOCore
import NIOHTTP1

/// The real host's side of a terminated connection (TLS verified against the system's roots): it sends the
/// requests `SecretInjector` passes on and hands each answer back, with every echo of the secret replaced by its
/// placeholder (headers and body, across chunks). Answers come back in the order requests went.
final class UpstreamRelay: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    weak var injector: SecretInjector?
    private var context: ChannelHandlerContext?
    /// One per request sent and not yet answered, oldest first (and whether it was a HEAD, whose answer has no body).
    private var redactions = CircularBuffer<StreamRedaction>()
    private var headRequests = CircularBuffer<Bool>()
    /// The answer being read is informational (`100 Continue`): its end is not the request's.
    private var informational = false
    private var readPending = false

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    // MARK: What the agent's side asks

    func begin(redaction: StreamRedaction, isHead: Bool) {
        redactions.append(redaction)
        headRequests.append(isHead)
    }

    func send(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context else { return }
        context.write(wrapOutboundOut(part), promise: nil)
        if flush { context.flush() }
    }

    func flush() { context?.flush() }

    func closeAll() { context?.close(promise: nil) }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func partnerBecameWritable() {
        if readPending {
            readPending = false
            context?.read()
        }
    }

    // MARK: Events of this side

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let injector else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            informational = head.status.code >= 100 && head.status.code < 200 && head.status.code != 101
            if let redaction = redactions.first {
                var headers = HTTPHeaders()
                for (name, value) in head.headers { headers.add(name: name, value: redaction.redacted(value)) }
                // A body whose echoes are replaced changes length: it goes chunked (the encoder frames it), unless it
                // has none (a HEAD's answer, 204, 304).
                let bodiless = headRequests.first == true || head.status == .noContent || head.status == .notModified || informational
                if !bodiless {
                    headers.remove(name: "content-length")
                    headers.remove(name: "transfer-encoding")
                }
                head.headers = headers
            }
            injector.deliver(.head(head), flush: false)
        case .body(let buffer):
            guard !redactions.isEmpty else { return injector.deliver(.body(.byteBuffer(buffer)), flush: false) }
            let passed = redactions[redactions.startIndex].pass(buffer.readableBytesView)
            if !passed.isEmpty { injector.deliver(.body(.byteBuffer(ByteBuffer(bytes: passed))), flush: false) }
        case .end(let trailers):
            if informational {
                informational = false
                injector.deliver(.end(trailers), flush: true)
                return
            }
            if !redactions.isEmpty {
                _ = headRequests.popFirst()
                var redaction = redactions.removeFirst()
                let held = redaction.finish()
                if !held.isEmpty { injector.deliver(.body(.byteBuffer(ByteBuffer(bytes: held))), flush: false) }
            }
            injector.deliver(.end(trailers), flush: true)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { injector?.deliverFlush() }

    func channelInactive(context: ChannelHandlerContext) {
        injector?.upstreamFailed("it closed the connection")
        injector = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        injector?.upstreamFailed("\(error)")
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { injector?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if injector?.isWritable ?? false {
            context.read()
        } else {
            readPending = true
        }
    }
}
