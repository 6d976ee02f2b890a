import Glibc
import KeyholdCore
import NIOCore
import NIOHTTP1

/// The agent's side of a connection whose TLS the gateway terminated (a host that carries a brokered secret): it
/// reads each request as HTTP/1.1, refuses one that carries a placeholder bound elsewhere (`key.misuse`), writes
/// the secret into exactly the named header (replacing what the agent sent there), and passes the request on to
/// `UpstreamRelay`, which talks to the real host over verified TLS. Nothing else of the request is touched: a
/// placeholder in the URL or the body goes as it is.
final class SecretInjector: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let broker: any SecretBroker
    private let secret: BrokeredSecret
    private let destination: String
    var upstream: UpstreamRelay?
    private var context: ChannelHandlerContext?
    /// A request was refused: the rest of it is dropped, and the connection closes once the answer is out.
    private var refusing = false
    private var readPending = false
    /// Whether the upstream answered anything to the request in flight (a failure then closes, not answers 502).
    var responseStarted = false
    private var requestsInFlight = 0

    init(broker: any SecretBroker, secret: BrokeredSecret, destination: String) {
        self.broker = broker
        self.secret = secret
        self.destination = destination
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refusing, let upstream else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            // Origin-form only: an absolute URI could name another site behind the same address (a CDN), and the
            // secret would follow it there.
            guard head.uri.hasPrefix("/") else {
                refuse(
                    context, "keyhold: requests to \(destination) take a path (origin-form), not \(EgressRouter.printable(head.uri))",
                    status: .badRequest)
                return
            }
            var scanned = Array(head.uri.utf8)
            for (_, value) in head.headers { scanned += [0x20] + Array(value.utf8) }
            if let misused = PlaceholderScan.labels(in: scanned, broker: broker).first(where: { $0 != secret.label }) {
                broker.recordMisuse(label: misused, destination: destination, location: "a request header or its URL")
                refuse(
                    context,
                    "keyhold: a placeholder of this sandbox's \(SecretBinding.describe(label: misused)) may not be sent to \(destination); the request was refused and recorded"
                )
                return
            }
            guard var opened = broker.open(secret) else {
                refuse(context, "keyhold: the secret '\(secret.name)' for \(destination) was revoked; ask the tenant's admin for a new one")
                return
            }
            defer { opened.value.withUnsafeMutableBytes { buffer in if let base = buffer.baseAddress { explicit_bzero(base, buffer.count) } } }
            let named = head.headers[secret.binding.header].joined(separator: " ")
            let presented = PlaceholderScan.placeholders(in: Array(named.utf8), broker: broker).first { $0.label == secret.label }?.token
            // The secret's host, whatever the agent named: another Host could route it to another site at that address.
            head.headers.replaceOrAdd(name: "host", value: secret.binding.hostHeader)
            head.headers.remove(name: secret.binding.header)
            head.headers.add(name: secret.binding.header, value: secret.binding.headerValue(secret: String(decoding: opened.value, as: UTF8.self)))
            let replacement = presented ?? SecretInjector.redactedMark
            requestsInFlight += 1
            responseStarted = false
            upstream.begin(redaction: StreamRedaction(secret: opened.value, replacement: Array(replacement.utf8)), isHead: head.method == .HEAD)
            upstream.send(.head(head), flush: false)
            broker.recordUse(of: opened, name: secret.name, destination: destination)
        case .body(let buffer):
            upstream.send(.body(.byteBuffer(buffer)), flush: false)
        case .end(let trailers):
            upstream.send(.end(trailers), flush: true)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) { upstream?.flush() }

    /// What stands in for an echo of the secret when the agent did not present its placeholder.
    static let redactedMark = "keyhold-secret-redacted"

    /// Answers `status` (403) with `message` and closes once it is written.
    private func refuse(_ context: ChannelHandlerContext, _ message: String, status: HTTPResponseStatus = .forbidden) {
        refusing = true
        upstream?.closeAll()
        let body = ByteBuffer(string: message + "\n")
        var headers = HTTPHeaders([("content-type", "text/plain"), ("connection", "close")])
        headers.add(name: "content-length", value: String(body.readableBytes))
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    // MARK: What the upstream side asks

    /// Writes a part of the upstream's answer to the agent.
    func deliver(_ part: HTTPServerResponsePart, flush: Bool) {
        guard let context, !refusing else { return }
        responseStarted = true
        if case .end = part { requestsInFlight = max(0, requestsInFlight - 1) }
        context.write(wrapOutboundOut(part), promise: nil)
        if flush { context.flush() }
    }

    /// The upstream failed: a request still waiting for its answer gets a 502 saying why; otherwise the agent's
    /// connection closes.
    func upstreamFailed(_ reason: String) {
        guard let context, !refusing else { return }
        if requestsInFlight > 0 && !responseStarted {
            refuse(context, "keyhold: \(destination) could not be reached securely: \(reason)", status: .badGateway)
        } else {
            context.close(promise: nil)
        }
    }

    func deliverFlush() { context?.flush() }

    var isWritable: Bool { context?.channel.isWritable ?? false }

    func partnerBecameWritable() {
        if readPending {
            readPending = false
            context?.read()
        }
    }

    // MARK: Events of this side

    func channelInactive(context: ChannelHandlerContext) {
        upstream?.closeAll()
        upstream = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        upstream?.closeAll()
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { upstream?.partnerBecameWritable() }
    }

    func read(context: ChannelHandlerContext) {
        if upstream?.isWritable ?? false {
            context.read()
        } else {
            readPending = true
        }
    }
}
