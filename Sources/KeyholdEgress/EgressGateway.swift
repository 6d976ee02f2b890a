import KeyholdCore
public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The way out of BYOK sandboxes: listeners inside each sandbox's network namespace (made by the daemon, served
/// here) that forward only to the destinations the sandbox's `EgressRoute` allows. HTTPS stays end to end: the
/// gateway sees a destination's name (CONNECT target or SNI), never a key or a body.
public final class EgressGateway: Sendable {
    let resolver: EgressResolver
    let logger: Logger
    private let refusedTotal = Atomic<Int>(0)
    /// The origin of the per-second log budgets.
    private let started = ContinuousClock.now
    /// Threads of its own for getaddrinfo(3), shared fairly between sandboxes, so that one sandbox's slow or flooded
    /// resolutions hold neither anyone else's work nor another sandbox's lookups.
    private let pool = FairLookupPool()
    /// How the gateway talks to a host that carries a brokered secret: TLS 1.2 or later, verified against the
    /// system's roots (and `additionalTrustRoots`).
    let upstreamTLS: NIOSSLContext

    /// - Parameters:
    ///   - resolver: how destination names are resolved (static entries first).
    ///   - logger: where refusals are logged (tenant, destination, reason; never a payload).
    ///   - additionalTrustRoots: a PEM file of roots trusted beside the system's for terminated connections (tests).
    /// - Throws: when the trust roots cannot be loaded.
    public init(resolver: EgressResolver, logger: Logger, additionalTrustRoots: String? = nil) throws {
        self.resolver = resolver
        self.logger = logger
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        if let additionalTrustRoots { configuration.additionalTrustRoots = [.file(additionalTrustRoots)] }
        upstreamTLS = try NIOSSLContext(configuration: configuration)
    }

    /// Connections refused on this host since the daemon started.
    public var refusedConnections: Int { refusedTotal.load(ordering: .relaxed) }

    /// Serves a listening socket made inside a sandbox's namespace (`NetworkNamespace.listeners`); takes ownership
    /// of it. Close the returned channel when the sandbox stops.
    public func serve(listeningSocket: Int32, route: EgressRoute) -> EventLoopFuture<any Channel> {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(EgressRouter(gateway: self, route: route))
                }
            }
            .withBoundSocket(listeningSocket)
    }

    /// Serves a datagram socket made inside a sandbox's namespace (127.0.0.1:53) as its resolver; takes ownership of it.
    public func serveDNS(datagramSocket: Int32, route: EgressRoute) -> EventLoopFuture<any Channel> {
        DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DNSResponder(gateway: self, route: route))
                }
            }
            .withBoundSocket(datagramSocket)
    }

    /// Resolves `host`, keeps only the addresses the rule may reach, and connects to the first that answers, on
    /// `eventLoop` (the client's, so that both sides are joined without a hop).
    func connect(host: String, port: Int, allowPrivate: Bool, route: EgressRoute, on eventLoop: any EventLoop) -> EventLoopFuture<any Channel> {
        let (resolver, pool) = (self.resolver, self.pool)
        return eventLoop.makeFutureWithTask {
            guard route.beginLookup() else {
                throw EgressRefusal("more than \(EgressRoute.lookupLimit) name resolutions in flight for this sandbox")
            }
            defer { route.endLookup() }
            let addresses = try await resolver.resolve(host, port: port, for: route, on: pool)
            let reachable = addresses.filter { address in
                let kind = address.addressClass
                return !kind.isNeverReachable && (allowPrivate || !kind.needsPrivateFlag)
            }
            guard let first = reachable.first else {
                let kinds = Set(addresses.map(\.addressClass.rawValue)).sorted().joined(separator: ", ")
                throw EgressRefusal(
                    "resolves to a \(kinds) address, on the host's own network: allowed only for an entry made with --private for exactly this host")
            }
            return first
        }.flatMap { address in
            ClientBootstrap(group: eventLoop)
                .channelOption(.allowRemoteHalfClosure, value: true)
                // Nothing is read from the destination until the client is joined to it (EgressRouter.glue).
                .channelOption(.autoRead, value: false)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(10))
                .connect(to: address)
        }
    }

    func logRefusal(route: EgressRoute, destination: String, reason: String) {
        refusedTotal.add(1, ordering: .relaxed)
        // Every refusal is counted; a flood of them is logged at 10 lines a second per sandbox, with the count left out.
        let permit = route.logPermit(atSecond: (ContinuousClock.now - started).components.seconds)
        guard permit.allowed else { return }
        var metadata: Logger.Metadata = [
            "tenant": .string(route.tenant), "unit": .string(route.unit), "destination": .string(destination), "reason": .string(reason),
        ]
        if permit.suppressed > 0 { metadata["suppressed_before"] = .stringConvertible(permit.suppressed) }
        logger.warning("egress refused", metadata: metadata)
    }
}
