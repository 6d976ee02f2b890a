import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// One listener of the metering proxy (loopback TCP or a Unix socket): an HTTP/1.1 server on SwiftNIO whose
/// requests are answered on the event loop that accepted their connection.
///
/// On shutdown it stops accepting, lets every connection finish the request it is answering (idle keep-alive
/// connections close at once) and waits up to `drainTimeout` for them.
struct ProxyListener: Service {
    enum Address: Sendable {
        case tcp(host: String, port: Int)
        case unixSocket(path: String)
    }

    let proxy: MeteringProxy
    let address: Address
    let onListening: @Sendable () -> Void
    var drainTimeout: TimeAmount = .seconds(10)

    /// A server whose connections speak HTTP/1.1 to the proxy.
    /// - Parameters:
    ///   - brokeredListener: the sandbox whose keys this listener brokers (nil: the managed proxy).
    ///   - budget: the connections the listener may hold open at once (a sandbox's listener); nil: unbounded.
    static func bootstrap(proxy: MeteringProxy, brokeredListener: BrokeredListener? = nil, budget: ConnectionBudget? = nil) -> ServerBootstrap {
        ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { [proxy] channel in
                if let budget {
                    guard budget.take(logger: proxy.logger) else { return channel.close() }
                    channel.closeFuture.whenComplete { _ in budget.give() }
                }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ProxyConnectionHandler(proxy: proxy, brokeredListener: brokeredListener))
                }
            }
            .childChannelOption(.maxMessagesPerRead, value: 16)
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let quiescing = ServerQuiescingHelper(group: group)
        var bootstrap = Self.bootstrap(proxy: proxy)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
        let channel: any Channel
        switch address {
        case .tcp(let host, let port):
            // Small answers written in two parts must not wait for a delayed ACK.
            bootstrap = bootstrap.childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            channel = try await bootstrap.bind(host: host, port: port).get()
        case .unixSocket(let path):
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        }
        onListening()
        let drained = group.next().makePromise(of: Void.self)
        let drainTimeout = self.drainTimeout
        await withTaskCancellationOrGracefulShutdownHandler {
            try? await channel.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            quiescing.initiateShutdown(promise: drained)
            // A stream may last minutes: after the timeout the remaining connections are left to the process's exit
            // (their reservations are in the journal and are charged at the next start).
            group.next().scheduleTask(in: drainTimeout) { drained.succeed(()) }
        }
        // The server channel closed: on shutdown this waits for the drain; otherwise it completes at once.
        quiescing.initiateShutdown(promise: drained)
        try? await drained.futureResult.get()
    }
}
