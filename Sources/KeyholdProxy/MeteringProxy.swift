import AsyncHTTPClient
import Foundation
public import KeyholdCore
public import KeyholdStore
public import KeyholdVault
public import Logging
public import NIOCore
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle
import Synchronization

/// The managed plan's metering proxy: speaks OpenAI's and Anthropic's APIs to agents, calls the provider with
/// the platform's key, meters every token from the provider's own accounting and refuses what the caps forbid.
public final class MeteringProxy: Sendable {
    let store: Store
    let plans: PlanCatalog
    let configuration: ProxyConfiguration
    let platformKeys: PlatformKeys
    /// Opens tenants' keys for brokered requests.
    let vaults: VaultRing
    /// Brokered uses of tenants' keys, audited in batches (`key.use`).
    let keyUses = KeyUseLedger()
    let clamps = ClampLedger()
    let responseOwners = ResponseOwners()
    let ledger = CapLedger()
    let journal: UsageJournal
    let journalFailures = JournalFailures()
    /// When the usage journal was last flushed into the database.
    let lastFlush = Mutex<ContinuousClock.Instant>(.now)
    /// Connections to the providers, and where each provider is.
    let upstreams: UpstreamPool
    let origins: [Provider: UpstreamOrigin]
    let logger: Logger
    let alerts: AlertNotifier
    /// Token lookups cached while the database is unchanged.
    let lookups: LookupCache

    /// The version of the data the proxy's caches follow, now (nil while unknown).
    public var lookupGeneration: Int? { lookups.currentVersion() }
    /// Database reads shared by the requests waiting on the same answer.
    let callerReads = SingleFlight<CallerKey, ProxyCaller.Resolution>()
    let keyReads = SingleFlight<ProviderKey, SecretBytes?>()
    let ledgerLoads = SingleFlight<Int64, Void>()

    /// - Parameter journalDirectory: where reservations and settlements are journaled until flushed to SQLite.
    public init(
        store: Store, vaults: VaultRing, plans: PlanCatalog, configuration: ProxyConfiguration, journalDirectory: String, logger: Logger
    ) throws {
        self.store = store
        self.plans = plans
        self.configuration = configuration
        self.platformKeys = PlatformKeys(store: store, vaults: vaults)
        self.vaults = vaults
        // Requests are served on the singleton group's loops (`ProxyListener`); each gets its own journal shard
        // and lookup connection.
        let eventLoops = Array(MultiThreadedEventLoopGroup.singleton.makeIterator())
        self.lookups = LookupCache(store: store)
        self.journal = try UsageJournal(directory: journalDirectory, eventLoops: eventLoops)
        self.upstreams = try UpstreamPool(
            connectTimeout: .seconds(10), readTimeout: .seconds(configuration.upstreamTimeoutSeconds), additionalCAFile: configuration.upstreamCAFile)
        var origins: [Provider: UpstreamOrigin] = [:]
        for provider in [Provider.openai, .anthropic] {
            let base = configuration.upstreamBaseURLs[provider] ?? provider.defaultBaseURL ?? ""
            guard let origin = UpstreamOrigin(baseURL: base) else { throw ProxyConfigurationError.invalidBaseURL(provider: provider, url: base) }
            origins[provider] = origin
        }
        self.origins = origins
        self.logger = logger
        self.alerts = AlertNotifier(
            store: store, webhooks: WebhookSender(destinations: configuration.tenantDestinations, logger: logger), logger: logger)
    }

    /// The proxy's listeners (loopback TCP and/or a Unix socket), as services for the daemon's group.
    /// - Parameter onListening: called once per listener when it is bound.
    public func listeners(onListening: @escaping @Sendable () -> Void) -> [any Service] {
        var services: [any Service] = []
        if let tcp = configuration.tcpAddress, let colon = tcp.lastIndex(of: ":"), let port = Int(tcp[tcp.index(after: colon)...]) {
            services.append(ProxyListener(proxy: self, address: .tcp(host: String(tcp[..<colon]), port: port), onListening: onListening))
        }
        if let path = configuration.socketPath {
            services.append(
                ProxyListener(proxy: self, address: .unixSocket(path: path)) {
                    chmod(path, 0o666)
                    onListening()
                }
            )
        }
        return services
    }

    /// Serves a listening socket made inside a managed sandbox's network namespace (its `http://127.0.0.1:PORT`);
    /// takes ownership of it. Close the returned channel when the sandbox stops.
    /// - Parameter brokered: for a brokered plan's sandbox: the listener then takes that sandbox's placeholders only,
    ///   and brokers its tenant's keys instead of metering the platform's.
    /// - Parameter unit: the sandbox's unit, named when it reaches its bound of connections (`ConnectionBudget`).
    public func serve(sandboxListener socket: Int32, brokered: BrokeredListener? = nil, unit: String = "a sandbox") -> EventLoopFuture<any Channel> {
        ProxyListener.bootstrap(proxy: self, brokeredListener: brokered, budget: ConnectionBudget(label: unit))
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .withBoundSocket(socket)
    }

    /// Serves a connection the egress gateway terminated for a brokered sandbox (an agent that called its key's host
    /// by name instead of its base URL) exactly as the broker's listener inside that sandbox serves one: the same
    /// placeholders, metering, caps and echo redaction; only the placeholders of `brokered.providers` are taken.
    /// Call it on the channel's event loop, its TLS in place.
    public func adoptBrokered(_ channel: any Channel, brokered: BrokeredListener) throws {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(ProxyConnectionHandler(proxy: self, brokeredListener: brokered))
    }

    /// The service that moves usage from the journal into SQLite (and replays it at start).
    public var usageFlusher: any Service { UsageFlusher(proxy: self) }

    /// Writes the usage journal's disk refused since the daemon started (each refused reservation refused its request).
    public var journalWriteFailures: Int { journalFailures.total }

    /// Seconds since the usage journal was last flushed into the database (since the proxy started, before then).
    public var journalLagSeconds: Double { (ContinuousClock.now - lastFlush.withLock { $0 }) / .seconds(1) }

    /// Records a successful flush of the journal.
    func flushed() { lastFlush.withLock { $0 = .now } }

    /// Forgets the tenant's usage windows once it runs nowhere on this host: its caps are then loaded again from
    /// the database when it comes back, with what it used on other hosts meanwhile.
    public func forgetUsage(tenantID: Int64) { ledger.forget(tenantID) }

    /// Forgets every tenant's usage windows (the host lost its leases).
    public func forgetAllUsage() { ledger.forgetAll() }

    /// How many listeners `listeners` creates.
    public var listenerCount: Int { (configuration.tcpAddress == nil ? 0 : 1) + (configuration.socketPath == nil ? 0 : 1) }
}
