import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// Keep-alive connections to the providers, kept per event loop so that a call runs on the loop of the agent's
/// connection, from the agent's bytes to the provider's and back, without a thread hop.
///
/// A call on a reused connection that the provider closed before answering (it may close idle connections at any
/// time) is sent again once on a new connection; a call on a new connection is never sent twice.
final class UpstreamPool: Sendable {
    private struct Key: Hashable {
        var loop: ObjectIdentifier
        var origin: UpstreamOrigin
    }
    /// An idle connection, only ever used on its own event loop.
    private struct Idle: Sendable {
        var channel: any Channel
        var handler: NIOLoopBound<UpstreamConnectionHandler>
    }

    private let idle = Mutex<[Key: [Idle]]>([:])
    private let tls: NIOSSLContext
    let connectTimeout: TimeAmount
    let readTimeout: TimeAmount
    /// How long a connection may stay idle in the pool, and how many idle ones are kept per loop and origin.
    let idleTimeout: TimeAmount = .seconds(50)
    let maximumIdlePerLoop = 256

    /// - Parameter additionalCAFile: PEM certificates trusted besides the system's roots (a self-hosted endpoint, a
    ///   TLS-inspecting egress proxy).
    init(connectTimeout: TimeAmount, readTimeout: TimeAmount, additionalCAFile: String? = nil) throws {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        // Certificates and host names verified, against the system's roots, as every provider's SDK does.
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let additionalCAFile { configuration.additionalTrustRoots = [.file(additionalCAFile)] }
        do {
            tls = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ProxyConfigurationError.tls(reason: "\(error)", caFile: additionalCAFile)
        }
    }

    /// Starts a call: `method origin.basePath + uri` with `headers` and `body`, answered to `receiver` on `eventLoop`.
    /// - Returns: the call, to cancel it.
    func send(
        to origin: UpstreamOrigin, method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer, on eventLoop: any EventLoop,
        receiver: any UpstreamReceiver
    ) -> UpstreamCall {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: origin.basePath + uri, headers: headers)
        head.headers.replaceOrAdd(name: "host", value: origin.hostHeader)
        head.headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        let call = UpstreamCall(pool: self, origin: origin, head: head, body: body, eventLoop: eventLoop, receiver: receiver)
        call.start()
        return call
    }

    /// An idle connection to `origin` on `eventLoop`, if there is one.
    func takeIdle(_ origin: UpstreamOrigin, on eventLoop: any EventLoop) -> UpstreamConnectionHandler? {
        let key = Key(loop: ObjectIdentifier(eventLoop), origin: origin)
        while let candidate = idle.withLock({ $0[key]?.popLast() }) {
            let handler = candidate.handler.value
            if handler.isIdle { return handler }
        }
        return nil
    }

    /// Connects to `origin` from `eventLoop`.
    func connect(_ origin: UpstreamOrigin, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamConnectionHandler> {
        let (tls, readTimeout, idleTimeout) = (self.tls, self.readTimeout, self.idleTimeout)
        let isTLS = origin.isTLS
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if isTLS {
                        // SNI takes a name, not an address; with none, the certificate is checked against the address.
                        let isAddress = origin.isAddress
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: isAddress ? nil : origin.host))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(UpstreamConnectionHandler(readTimeout: readTimeout, idleTimeout: idleTimeout))
                }
            }
            .connect(host: origin.connectAddress ?? origin.host, port: origin.port)
        return connected.flatMapThrowing { channel in
            let handler = try channel.pipeline.syncOperations.handler(type: UpstreamConnectionHandler.self)
            let bound = NIOLoopBound(handler, eventLoop: eventLoop)
            handler.onReusable = { [weak self] in self?.keep(Idle(channel: channel, handler: bound), origin: origin, on: eventLoop) }
            return handler
        }
    }

    private func keep(_ connection: Idle, origin: UpstreamOrigin, on eventLoop: any EventLoop) {
        let key = Key(loop: ObjectIdentifier(eventLoop), origin: origin)
        let kept = idle.withLock { idle -> Bool in
            if idle[key, default: []].count >= maximumIdlePerLoop { idle[key]?.removeAll { !$0.channel.isActive } }
            guard idle[key, default: []].count < maximumIdlePerLoop else { return false }
            idle[key, default: []].append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }
}

/// One call through the pool, on the agent's event loop.
final class UpstreamCall: UpstreamReceiver {
    private let pool: UpstreamPool
    private let origin: UpstreamOrigin
    private let head: HTTPRequestHead
    private let body: ByteBuffer
    private let eventLoop: any EventLoop
    private var receiver: (any UpstreamReceiver)?
    private var connection: UpstreamConnectionHandler?
    private var reused = false

    fileprivate init(
        pool: UpstreamPool, origin: UpstreamOrigin, head: HTTPRequestHead, body: ByteBuffer, eventLoop: any EventLoop, receiver: any UpstreamReceiver
    ) {
        self.pool = pool
        self.origin = origin
        self.head = head
        self.body = body
        self.eventLoop = eventLoop
        self.receiver = receiver
    }

    /// - Parameter fresh: on a new connection, not an idle one.
    fileprivate func start(fresh: Bool = false) {
        if !fresh, let connection = pool.takeIdle(origin, on: eventLoop) {
            reused = true
            return send(on: connection)
        }
        reused = false
        pool.connect(origin, on: eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection): self.send(on: connection)
            case .failure(let error):
                guard let receiver = self.receiver else { return }
                self.receiver = nil
                receiver.upstreamFailed(.connect("\(error)"))
            }
        }
    }

    private func send(on connection: UpstreamConnectionHandler) {
        guard receiver != nil else { return connection.cancel() }
        self.connection = connection
        connection.send(head: head, body: body, to: self)
    }

    /// Stops the call; the receiver hears nothing more.
    func cancel() {
        receiver = nil
        connection?.cancel()
        connection = nil
    }

    func upstreamSent() { receiver?.upstreamSent() }
    func upstreamHead(_ head: HTTPResponseHead) { receiver?.upstreamHead(head) }
    func upstreamBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void>? { receiver?.upstreamBody(buffer) }
    func upstreamReadComplete() { receiver?.upstreamReadComplete() }

    func upstreamFinished() {
        connection = nil
        receiver?.upstreamFinished()
        receiver = nil
    }

    func upstreamFailed(_ failure: UpstreamFailure) {
        connection = nil
        if case .connectionLost(answered: false) = failure, reused {
            // The provider had closed this idle connection: the request was not read; send it on a new one (not on
            // another idle one: after a provider restart they are all closed).
            return start(fresh: true)
        }
        guard let receiver else { return }
        self.receiver = nil
        receiver.upstreamFailed(failure)
    }
}
