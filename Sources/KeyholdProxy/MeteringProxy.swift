import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
public import KeyholdCore
public import KeyholdStore
public import KeyholdVault
public import Logging
import NIOCore
public import ServiceLifecycle

/// The managed plan's metering proxy: speaks OpenAI's and Anthropic's APIs to agents, calls the provider with
/// the platform's key, meters every token from the provider's own accounting and refuses what the caps forbid.
public final class MeteringProxy: Sendable {
    let store: Store
    let plans: PlanCatalog
    let configuration: ProxyConfiguration
    let platformKeys: PlatformKeys
    let ledger = CapLedger()
    let journal: UsageJournal
    let httpClient: HTTPClient
    let logger: Logger
    let alerts: AlertNotifier
    /// Token lookups cached while the database is unchanged.
    let lookups: LookupCache

    /// - Parameter journalDirectory: where reservations and settlements are journaled until flushed to SQLite.
    public init(
        store: Store, vaults: VaultRing, plans: PlanCatalog, configuration: ProxyConfiguration, journalDirectory: String, logger: Logger
    ) throws {
        self.store = store
        self.plans = plans
        self.configuration = configuration
        self.platformKeys = PlatformKeys(store: store, vaults: vaults)
        self.lookups = LookupCache(databasePath: store.path)
        self.journal = try UsageJournal(directory: journalDirectory)
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 512)
        clientConfiguration.timeout = .init(connect: .seconds(10), read: .seconds(configuration.upstreamTimeoutSeconds))
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        self.logger = logger
        self.alerts = AlertNotifier(store: store, httpClient: httpClient, logger: logger)
    }

    /// Stops the upstream client (call once the servers are down).
    public func shutdown() async {
        try? await httpClient.shutdown()
    }

    /// The router agents talk to.
    func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.get("/v1/models") { request, _ in try await self.models(request) }
        router.post("/v1/chat/completions") { request, context in try await self.forward(request, context: context, format: .openAI) }
        router.post("/v1/embeddings") { request, context in try await self.forward(request, context: context, format: .openAI) }
        router.post("/v1/messages") { request, context in try await self.forward(request, context: context, format: .anthropic) }
        return router
    }

    /// The proxy's listeners (loopback TCP and/or a Unix socket), as services for the daemon's group.
    /// - Parameter onListening: called once per listener when it is bound.
    public func listeners(onListening: @escaping @Sendable () -> Void) -> [any Service] {
        var services: [any Service] = []
        if let tcp = configuration.tcpAddress, let colon = tcp.lastIndex(of: ":"), let port = Int(tcp[tcp.index(after: colon)...]) {
            let address = BindAddress.hostname(String(tcp[..<colon]), port: port)
            services.append(
                Application(
                    router: router(), configuration: .init(address: address, serverName: "keyhold-proxy", backlog: 1024),
                    onServerRunning: { _ in onListening() }, logger: logger
                )
            )
        }
        if let path = configuration.socketPath {
            unlink(path)
            services.append(
                Application(
                    router: router(), configuration: .init(address: .unixDomainSocket(path: path), serverName: "keyhold-proxy", backlog: 1024),
                    onServerRunning: { _ in
                        chmod(path, 0o666)
                        onListening()
                    }, logger: logger
                )
            )
        }
        return services
    }

    /// The service that moves usage from the journal into SQLite (and replays it at start).
    public var usageFlusher: any Service { UsageFlusher(proxy: self) }

    /// How many listeners `listeners` creates.
    public var listenerCount: Int { (configuration.tcpAddress == nil ? 0 : 1) + (configuration.socketPath == nil ? 0 : 1) }

    /// `GET /v1/models`: the plan's models, in the caller's format; no upstream call.
    func models(_ request: Request) async throws -> Response {
        let format: WireFormat =
            request.headers[HTTPField.Name("anthropic-version")!] != nil || request.headers[HTTPField.Name("x-api-key")!] != nil
            ? .anthropic : .openAI
        guard let token = format.token(in: request.headers) else {
            return format.error(.unauthorized, type: format.authenticationError, message: "missing proxy token")
        }
        let caller: ProxyCaller
        switch try await ProxyCaller.resolve(token: token, store: store, plans: plans, cache: lookups, version: lookups.currentVersion()) {
        case .refused(let reason): return format.error(.unauthorized, type: format.authenticationError, message: reason)
        case .caller(let resolved): caller = resolved
        }
        let provider: Provider = format == .anthropic ? .anthropic : .openai
        let models = caller.plan.models.filter { $0.provider == provider }.map(\.id)
        let object: [String: Any] =
            format == .anthropic
            ? [
                "data": models.map { ["type": "model", "id": $0, "display_name": $0, "created_at": "2025-01-01T00:00:00Z"] }, "has_more": false,
                "first_id": models.first ?? NSNull(), "last_id": models.last ?? NSNull(),
            ]
            : ["object": "list", "data": models.map { ["id": $0, "object": "model", "created": 0, "owned_by": "keyhold"] }]
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
