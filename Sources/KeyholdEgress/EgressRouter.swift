import KeyholdCore
import NIOCore
import NIOPosix
import NIOSSL

/// Decides where one connection from a sandbox goes, from its first bytes only: a `CONNECT host:port` (clients
/// that honour `HTTPS_PROXY`), a TLS ClientHello's server name (clients that resolved an allowed name to the
/// gateway), or a plain request's `Host`. Then it connects and steps aside: the bytes flow end to end through a
/// `GlueHandler` pair, never read again. What it refuses it logs with tenant and destination, and counts.
///
/// Bounded: at most `sniffLimit` bytes are held before the destination is known, none are read while connecting
/// (the channel stops reading), and a connection that has not reached its destination within 10 s is closed.
final class EgressRouter: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The most a client may send before its destination is known (a ClientHello's records, or a request head).
    static let sniffLimit = 70_000

    private enum State {
        case sniffing
        case connecting
        /// A CONNECT tunnel to `host` is open; the first bytes through it are checked: TLS unless plain HTTP is allowed,
        /// and a TLS server name must be the CONNECT target's (no fronting another name through an allowed host).
        /// With a brokered secret bound to the destination, the tunnel's TLS is terminated rather than spliced.
        case tunnel(upstream: any Channel, host: String, requireTLS: Bool, secret: BrokeredSecret?)
        /// A CONNECT tunnel to a brokered key's destination: its TLS is terminated and served by the key broker.
        case keyTunnel(host: String, port: Int)
        case done
    }

    private let gateway: EgressGateway
    private let route: EgressRoute
    private var state = State.sniffing
    private var bytes: [UInt8] = []
    /// How far a plain request head was searched for its end already.
    private var headScanned = 0
    private var connectHeadLength = 0
    /// The 10 s deadline to reach a destination; cancelled once the connection is joined, refused or closed.
    private var deadline: Scheduled<Void>?
    /// A ClientHello is parsed again only once this many bytes are in (the end of the record it waits for).
    private var helloNeeds = 0

    init(gateway: EgressGateway, route: EgressRoute) {
        self.gateway = gateway
        self.route = route
    }

    func channelActive(context: ChannelHandlerContext) {
        guard route.open() else {
            refuse(context, destination: "(any)", reason: "more than \(EgressRoute.connectionLimit) connections open at once", http: false)
            return
        }
        // Counted for the connection's whole life, glued or not.
        context.channel.closeFuture.whenComplete { [route] _ in route.close() }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        // A client that never says where it goes, or a tunnel that never starts, does not hold sockets for ever.
        deadline = context.eventLoop.scheduleTask(in: .seconds(10)) {
            let (router, context) = bound.value
            switch router.state {
            case .sniffing, .connecting, .tunnel, .keyTunnel:
                router.closeUpstream()
                router.refuse(context, destination: "(unknown)", reason: "no destination reached within 10 s", http: false)
            case .done: break
            }
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        bytes += buffer.readableBytesView
        switch state {
        case .sniffing:
            guard bytes.count <= Self.sniffLimit else {
                refuse(context, destination: "(unknown)", reason: "more than \(Self.sniffLimit) bytes without a destination", http: false)
                return
            }
            evaluate(context)
        case .connecting, .done: break
        case .tunnel: startTunnel(context)
        case .keyTunnel(let host, let port): startKeyTunnel(context, host: host, port: port)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client closed its side before its bytes could flow: nothing will follow.
        if let event = event as? ChannelEvent, case .inputClosed = event {
            closeUpstream()
            state = .done
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closeUpstream()
        finish()
        context.fireChannelInactive()
    }

    /// Nothing more to decide: the deadline is cancelled and the buffer released.
    private func finish() {
        state = .done
        bytes = []
        deadline?.cancel()
        deadline = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        closeUpstream()
        state = .done
        context.close(promise: nil)
    }

    private func closeUpstream() {
        if case .tunnel(let upstream, _, _, _) = state { upstream.close(promise: nil) }
    }

    private func evaluate(_ context: ChannelHandlerContext) {
        let local = context.channel.localAddress
        let localPort = local?.port ?? 443
        if bytes.first == 0x16 {
            guard bytes.count >= helloNeeds else { return }
            switch ClientHello.parse(bytes) {
            case .incomplete(let needed):
                helloNeeds = needed
                return
            case .malformed(let why): refuse(context, destination: "(tls)", reason: why, http: false)
            case .complete(let serverName):
                // Without SNI (a connection to an address), the destination is the address the client dialled.
                let host = serverName ?? local?.ipAddress ?? ""
                decide(context, host: host, port: localPort, tls: true, connect: false)
            }
            return
        }
        switch RequestHead.parse(bytes, scanFrom: headScanned) {
        case .incomplete:
            headScanned = max(0, bytes.count - 3)
        case .malformed(let why): refuse(context, destination: "(unknown)", reason: why, http: true)
        case .complete(let head):
            // Plain HTTP is read here anyway: a placeholder in it never leaves (TLS to other hosts stays unread).
            if let broker = route.broker, let label = PlaceholderScan.labels(in: bytes.prefix(head.length), broker: broker).first {
                let destination = head.authority.map(Self.printable) ?? "(no Host)"
                broker.recordMisuse(label: label, destination: destination, location: "a plain HTTP request head")
                refuse(context, destination: destination, reason: "a placeholder of this sandbox may not be sent there", http: true)
                return
            }
            guard let authority = head.authority else {
                refuse(context, destination: "(no Host)", reason: "a request without a Host header", http: true)
                return
            }
            guard let (host, port) = RequestHead.split(authority: authority, defaultPort: head.isConnect ? 443 : localPort) else {
                refuse(context, destination: authority, reason: "a malformed destination", http: true)
                return
            }
            if head.isConnect { connectHeadLength = head.length }
            decide(context, host: host, port: port, tls: head.isConnect, connect: head.isConnect)
        }
    }

    private func decide(_ context: ChannelHandlerContext, host rawHost: String, port: Int, tls: Bool, connect: Bool) {
        // What is checked is exactly what is resolved: a name with a NUL byte or Unicode never reaches the resolver.
        guard let host = EgressRule.canonicalDestination(rawHost) else {
            refuse(context, destination: rawHost, reason: "not a valid host name or address", http: !tls || connect)
            return
        }
        let destination = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let policy = route.policy
        switch policy.decide(host: host, port: port, tls: tls) {
        case .refuse(let reason):
            refuse(context, destination: destination, reason: reason, http: !tls || connect)
        case .allow(let ruleAllowsPrivate):
            // A brokered key's destination (an agent that ignores its base URL): the key broker answers, here.
            if tls, route.isKeyDestination(host: host, port: port) {
                guard connect else { return serveKey(context, host: host, port: port, destination: destination) }
                bytes.removeFirst(min(connectHeadLength, bytes.count))
                state = .keyTunnel(host: host, port: port)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
                if !bytes.isEmpty { startKeyTunnel(context, host: host, port: port) }
                return
            }
            let secret = tls ? route.terminatedSecret(host: host, port: port) : nil
            // A secret bound to a name reaches a private address only when both its rule and the secret say so.
            let allowPrivate = ruleAllowsPrivate && (secret?.binding.allowPrivate ?? true)
            let requireTLS: Bool
            if case .refuse = policy.decide(host: host, port: port, tls: false) { requireTLS = true } else { requireTLS = false }
            state = .connecting
            // Nothing more is read from the client until both sides are joined.
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            gateway.connect(host: host, port: port, allowPrivate: allowPrivate, route: route, on: context.eventLoop).whenComplete { result in
                let (router, context) = bound.value
                guard case .connecting = router.state else {
                    if case .success(let upstream) = result { upstream.close(promise: nil) }
                    return
                }
                switch result {
                case .failure(let error):
                    router.refuse(context, destination: destination, reason: "\(error)", http: !tls || connect)
                case .success(let upstream):
                    if connect {
                        router.bytes.removeFirst(min(router.connectHeadLength, router.bytes.count))
                        router.state = .tunnel(upstream: upstream, host: host, requireTLS: requireTLS, secret: secret)
                        context.writeAndFlush(router.wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 Connection established\r\n\r\n")), promise: nil)
                        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
                        if !router.bytes.isEmpty { router.startTunnel(context) }
                    } else if let secret {
                        router.terminate(context, to: upstream, secret: secret, host: host, destination: destination)
                    } else {
                        router.glue(context, to: upstream)
                    }
                }
            }
        }
    }

    /// The first bytes through a CONNECT tunnel: TLS, unless an http:// entry allows plain HTTP there; a TLS
    /// ClientHello must name the CONNECT target (or no name at all).
    private func startTunnel(_ context: ChannelHandlerContext) {
        guard case .tunnel(let upstream, let host, let requireTLS, let secret) = state else { return }
        func refuseTunnel(_ reason: String) {
            upstream.close(promise: nil)
            state = .done
            refuse(context, destination: host, reason: reason, http: false)
        }
        guard bytes.first == 0x16 else {
            if requireTLS { refuseTunnel("plain HTTP through a tunnel needs an http:// entry") } else { glue(context, to: upstream) }
            return
        }
        guard bytes.count <= Self.sniffLimit else { return refuseTunnel("more than \(Self.sniffLimit) bytes without a ClientHello") }
        guard bytes.count >= helloNeeds else { return }
        switch ClientHello.parse(bytes) {
        case .incomplete(let needed): helloNeeds = needed
        case .malformed(let why): refuseTunnel(why)
        case .complete(let serverName):
            if let serverName, EgressRule.canonicalDestination(serverName) != host {
                refuseTunnel("the TLS server name \(EgressRouter.printable(serverName)) is not the tunnel's destination")
            } else if let secret {
                terminate(context, to: upstream, secret: secret, host: host, destination: secret.binding.destination)
            } else {
                glue(context, to: upstream)
            }
        }
    }

    /// The first bytes through a CONNECT tunnel to a key's destination: a ClientHello naming it (or nothing).
    private func startKeyTunnel(_ context: ChannelHandlerContext, host: String, port: Int) {
        guard bytes.count <= Self.sniffLimit, bytes.first == 0x16 else {
            return refuse(context, destination: host, reason: "a tunnel to a brokered key's host must start with TLS", http: false)
        }
        guard bytes.count >= helloNeeds else { return }
        switch ClientHello.parse(bytes) {
        case .incomplete(let needed): helloNeeds = needed
        case .malformed(let why): refuse(context, destination: host, reason: why, http: false)
        case .complete(let serverName):
            if let serverName, EgressRule.canonicalDestination(serverName) != host {
                refuse(
                    context, destination: host, reason: "the TLS server name \(EgressRouter.printable(serverName)) is not the tunnel's destination",
                    http: false)
            } else {
                serveKey(context, host: host, port: port, destination: host)
            }
        }
    }

    /// Terminates the agent's TLS with its sandbox's certificate for `host` and hands the connection to the key
    /// broker (no connection leaves from here: the broker makes its own to the key's base URL).
    private func serveKey(_ context: ChannelHandlerContext, host: String, port: Int, destination: String) {
        guard let authority = route.authority, let broker = route.broker else {
            return refuse(context, destination: destination, reason: "the sandbox has no key broker", http: false)
        }
        let pending = bytes
        finish()
        do {
            try context.pipeline.syncOperations.addHandler(
                NIOSSLServerHandler(context: try authority.serverContext(host: host)), position: .after(self))
            try broker.serveKeyConnection(context.channel, host: host, port: port)
        } catch {
            route.countRefused()
            gateway.logRefusal(route: route, destination: destination, reason: "\(error)")
            context.close(promise: nil)
            return
        }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        if !pending.isEmpty {
            context.fireChannelRead(NIOAny(ByteBuffer(bytes: pending)))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Joins the client and the upstream and leaves the pipeline; what was read so far goes first.
    private func glue(_ context: ChannelHandlerContext, to upstream: any Channel) {
        let pending = bytes
        finish()
        let (clientSide, upstreamSide) = GlueHandler.pair()
        // The upstream was connected on this event loop (EgressGateway.connect), so both sides are joined at once.
        upstream.eventLoop.preconditionInEventLoop()
        do {
            try context.pipeline.syncOperations.addHandler(clientSide)
            try upstream.pipeline.syncOperations.addHandler(upstreamSide)
        } catch {
            upstream.close(promise: nil)
            context.close(promise: nil)
            return
        }
        if !pending.isEmpty { upstream.writeAndFlush(ByteBuffer(bytes: pending), promise: nil) }
        // Both sides read from now on (the upstream was connected with reading off, so nothing it sent was lost).
        upstream.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// Terminates the agent's TLS with its sandbox's certificate for `host` and the upstream's with the real host's,
    /// and leaves the pipeline; what was read so far (the ClientHello) goes to the TLS handler first.
    private func terminate(_ context: ChannelHandlerContext, to upstream: any Channel, secret: BrokeredSecret, host: String, destination: String) {
        let pending = bytes
        finish()
        do {
            try TLSTermination.join(
                agent: context.pipeline.syncOperations, after: self, upstream: upstream, secret: secret, route: route, gateway: gateway, host: host,
                destination: destination)
        } catch {
            upstream.close(promise: nil)
            route.countRefused()
            gateway.logRefusal(route: route, destination: destination, reason: "\(error)")
            context.close(promise: nil)
            return
        }
        upstream.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
        if !pending.isEmpty {
            context.fireChannelRead(NIOAny(ByteBuffer(bytes: pending)))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    private func refuse(_ context: ChannelHandlerContext, destination: String, reason: String, http: Bool) {
        finish()
        route.countRefused()
        let shown = Self.printable(destination)
        gateway.logRefusal(route: route, destination: shown, reason: reason)
        guard http, context.channel.isActive else {
            context.close(promise: nil)
            return
        }
        let body = "keyhold: egress to \(shown) refused for tenant \(route.tenant): \(reason)\n"
        let head = "HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n"
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: head + body))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    /// A destination as a log line and an answer may carry it: at most 255 characters, control bytes escaped.
    static func printable(_ text: String) -> String {
        let limited = text.unicodeScalars.prefix(255)
        var result = ""
        for scalar in limited {
            if scalar.value < 0x20 || scalar.value == 0x7f || scalar.value > 0x7e {
                let code = String(min(scalar.value, 0xff), radix: 16)
                result += "\\x" + (code.count == 1 ? "0" + code : code)
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return text.unicodeScalars.count > 255 ? result + "..." : result
    }
}
