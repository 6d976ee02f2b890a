import KeyholdCore
import NIOCore
import NIOPosix

/// Decides where one connection from a sandbox goes, from its first bytes only: a `CONNECT host:port` (clients
/// that honour `HTTPS_PROXY`), a TLS ClientHello's server name (clients that resolved an allowed name to the
/// gateway), or a plain request's `Host`. Then it connects and steps aside: the bytes flow end to end through a
/// `GlueHandler` pair, never read again. What it refuses it logs with tenant and destination, and counts.
final class EgressRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State {
        case sniffing
        case connecting
        /// A CONNECT tunnel is open; the first bytes through it are checked (TLS unless plain HTTP is allowed).
        case tunnel(upstream: any Channel, requireTLS: Bool)
        case done
    }

    private let gateway: EgressGateway
    private let route: EgressRoute
    private var state = State.sniffing
    private var bytes: [UInt8] = []
    private var connectHeadLength = 0

    init(gateway: EgressGateway, route: EgressRoute) {
        self.gateway = gateway
        self.route = route
    }

    func channelActive(context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // A client that never says where it goes does not hold a socket for ever.
        context.eventLoop.scheduleTask(in: .seconds(10)) {
            let (router, context) = bound.value
            if case .sniffing = router.state { router.refuse(context, destination: "(unknown)", reason: "no request within 10 s", http: false) }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes += buffer.readableBytesView
        switch state {
        case .sniffing: evaluate(context)
        case .connecting, .done: break
        case .tunnel(let upstream, let requireTLS):
            if requireTLS && bytes.first != 0x16 {
                upstream.close(promise: nil)
                refuse(context, destination: "(tunnel)", reason: "plain HTTP through a tunnel needs an http:// entry", http: false)
            } else {
                glue(context, to: upstream)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .tunnel(let upstream, _) = state { upstream.close(promise: nil) }
        state = .done
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state = .done
        context.close(promise: nil)
    }

    private func evaluate(_ context: ChannelHandlerContext) {
        let local = context.channel.localAddress
        let localPort = local?.port ?? 443
        if bytes.first == 0x16 {
            switch ClientHello.parse(bytes) {
            case .incomplete: return
            case .malformed(let why): refuse(context, destination: "(tls)", reason: why, http: false)
            case .complete(let serverName):
                // Without SNI (a connection to an address), the destination is the address the client dialled.
                let host = serverName ?? local?.ipAddress ?? ""
                decide(context, host: host, port: localPort, tls: true, connect: false)
            }
            return
        }
        switch RequestHead.parse(bytes) {
        case .incomplete: return
        case .malformed(let why): refuse(context, destination: "(unknown)", reason: why, http: true)
        case .complete(let head):
            guard let authority = head.authority else {
                refuse(context, destination: "(no Host)", reason: "a request without a Host header", http: true)
                return
            }
            guard let (host, port) = RequestHead.split(authority: authority, defaultPort: head.isConnect ? 443 : localPort) else {
                refuse(context, destination: String(authority.prefix(80)), reason: "a malformed destination", http: true)
                return
            }
            if head.isConnect { connectHeadLength = head.length }
            decide(context, host: host, port: port, tls: head.isConnect, connect: head.isConnect)
        }
    }

    private func decide(_ context: ChannelHandlerContext, host: String, port: Int, tls: Bool, connect: Bool) {
        let destination = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let policy = route.policy
        switch policy.decide(host: host, port: port, tls: tls) {
        case .refuse(let reason):
            refuse(context, destination: destination, reason: reason, http: !tls || connect)
        case .allow(let allowPrivate):
            let requireTLS: Bool
            if case .refuse = policy.decide(host: host, port: port, tls: false) { requireTLS = true } else { requireTLS = false }
            state = .connecting
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            gateway.connect(host: host, port: port, allowPrivate: allowPrivate, on: context.eventLoop).whenComplete { result in
                let (router, context) = bound.value
                guard case .connecting = router.state else {
                    if case .success(let upstream) = result { upstream.close(promise: nil) }
                    return
                }
                switch result {
                case .failure(let error):
                    router.refuse(context, destination: destination, reason: "\(error)", http: !tls || connect)
                case .success(let upstream):
                    router.route.countAllowed()
                    if connect {
                        router.bytes.removeFirst(min(router.connectHeadLength, router.bytes.count))
                        router.state = .tunnel(upstream: upstream, requireTLS: requireTLS)
                        context.writeAndFlush(router.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
                        if !router.bytes.isEmpty { router.channelReadAgain(context) }
                    } else {
                        router.glue(context, to: upstream)
                    }
                }
            }
        }
    }

    /// Re-checks bytes that arrived with the CONNECT head.
    private func channelReadAgain(_ context: ChannelHandlerContext) {
        guard case .tunnel(let upstream, let requireTLS) = state else { return }
        if requireTLS && bytes.first != 0x16 {
            upstream.close(promise: nil)
            refuse(context, destination: "(tunnel)", reason: "plain HTTP through a tunnel needs an http:// entry", http: false)
        } else {
            glue(context, to: upstream)
        }
    }

    /// Joins the client and the upstream and leaves the pipeline; what was read so far goes first.
    private func glue(_ context: ChannelHandlerContext, to upstream: any Channel) {
        state = .done
        let (clientSide, upstreamSide) = GlueHandler.pair()
        do {
            try context.pipeline.syncOperations.addHandler(clientSide)
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        // The upstream was connected on this event loop (EgressGateway.connect), so both sides are joined at once.
        upstream.eventLoop.preconditionInEventLoop()
        do {
            try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        if !bytes.isEmpty { upstream.writeAndFlush(ByteBuffer(bytes: bytes), promise: nil) }
        bytes = []
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, destination: String, reason: String, http: Bool) {
        state = .done
        bytes = []
        route.countRefused()
        gateway.logRefusal(route: route, destination: destination, reason: reason)
        guard http, context.channel.isActive else {
            context.close(promise: nil)
            return
        }
        let body = "keyhold: egress to \(destination) refused for tenant \(route.tenant): \(reason)\n"
        let head = "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n"
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + body))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}
