import KeyholdCore
import NIOCore
import NIOHTTP1
import NIOSSL

/// Joins an agent's connection to a host that carries a brokered secret with the connection the gateway opened to
/// that host, TLS terminated on both: towards the agent with a certificate from its sandbox's authority, towards
/// the host verified against the system's roots. HTTP/1.1 runs between them (`SecretInjector`, `UpstreamRelay`).
enum TLSTermination {
    /// Adds both sides' handlers: the agent's after `router` (whose buffered bytes, the ClientHello, the caller
    /// then fires into them), the host's on `upstream` (connected on the same event loop, reading off).
    /// - Throws: when the sandbox's certificate for `host` cannot be made, or a handler cannot be added.
    static func join(
        agent pipeline: ChannelPipeline.SynchronousOperations, after router: any ChannelHandler, upstream: any Channel, secret: BrokeredSecret,
        route: EgressRoute, gateway: EgressGateway, host: String, destination: String
    ) throws {
        guard let authority = route.authority, let broker = route.broker else {
            throw EgressRefusal("the sandbox has no certificate authority for brokered secrets")
        }
        upstream.eventLoop.preconditionInEventLoop()
        let isAddress = IPLiteral.ipv4(host) != nil || IPLiteral.ipv6(host) != nil
        let relay = UpstreamRelay()
        let injector = SecretInjector(broker: broker, secret: secret, destination: destination)
        injector.upstream = relay
        relay.injector = injector
        try upstream.pipeline.syncOperations.addHandlers([
            try NIOSSLClientHandler(context: gateway.upstreamTLS, serverHostname: isAddress ? nil : host),
            HTTPRequestEncoder(),
            ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)),
            relay,
        ])
        try pipeline.addHandlers(
            [
                NIOSSLServerHandler(context: try authority.serverContext(host: host)),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTPResponseEncoder(),
                injector,
            ], position: .after(router))
    }
}
