import AsyncHTTPClient
import Foundation
import Hummingbird
import KeyholdClient
import KeyholdCore
import KeyholdOrchestration
import KeyholdProxy
import KeyholdStore
import KeyholdVault
public import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `keyhold serve`: the admin API on a Unix socket (and optionally loopback TCP), the sandbox
/// reconciler, and systemd readiness and watchdog.
public final class Daemon: Sendable {
    public let plane: ControlPlane
    /// The managed plan's metering proxy, when configured.
    public let proxy: MeteringProxy?
    let options: DaemonOptions
    /// Where the units' launcher is, when systemd is used: the configured one, or its root-owned copy (``LauncherPlacement``).
    public let launcherPlacement: LauncherPlacement.Placement?
    let httpClient: HTTPClient
    let logger: Logger
    /// This process among the fleet's daemons (a second daemon with the same host id is refused).
    let instance = HostHeartbeat.makeInstance()

    /// Loads plans, the KEK and the database; fails with a clear error before anything listens.
    public init(options: DaemonOptions, logger: Logger) throws {
        let state = StateDirectory(path: options.stateDirectory, database: options.database)
        let plans = try PlanCatalog.load(directory: options.plansDirectory)
        let vault = try state.loadVault()
        let store = try state.openStore()
        try Self.checkKEKMatches(vault: vault, store: store, path: state.kekPath)
        try HostHeartbeat.register(store: store, host: options.host, instance: instance, keks: vault.kekIDs)
        try options.host.record(stateDirectory: options.stateDirectory)
        store.nameHost(options.host.id)
        let vaults = VaultRing(vault)
        let httpClient = HTTPClient.shared
        var sandboxConfiguration = options.sandbox
        sandboxConfiguration.hostID = options.host.id
        sandboxConfiguration.maxSandboxes = options.host.maxSandboxes
        sandboxConfiguration.leaseDuration = options.host.lease
        sandboxConfiguration.installationTag = SandboxConfiguration.installationTag(stateDirectory: options.stateDirectory)
        if sandboxConfiguration.systemdEnabled {
            let placement = try LauncherPlacement.place(
                execPath: sandboxConfiguration.execPath, stagingRoot: sandboxConfiguration.launcherStagingRoot)
            if let reason = placement.copiedBecause {
                logger.notice(
                    "sandboxes could not run \(sandboxConfiguration.execPath) (\(reason)); they run its root-owned copy \(placement.execPath)")
            }
            sandboxConfiguration.execPath = placement.execPath
            launcherPlacement = placement
        } else {
            launcherPlacement = nil
        }
        let sandboxes = try SandboxService(store: store, vaults: vaults, plans: plans, configuration: sandboxConfiguration, logger: logger)
        self.plane = ControlPlane(
            store: store, vaults: vaults, plans: plans,
            validator: KeyValidator(
                httpClient: httpClient, destinations: options.sandbox.tenantDestinations, baseURLOverrides: options.providerBaseURLs,
                timeout: .seconds(options.keyChecks.timeoutSeconds)),
            sandboxes: sandboxes, state: state, webhooks: WebhookSender(destinations: options.sandbox.tenantDestinations, logger: logger)
        )
        self.proxy = try options.proxy.map {
            try MeteringProxy(
                store: store, vaults: vaults, plans: plans, configuration: $0, journalDirectory: state.file("usage-journal"), logger: logger
            )
        }
        if let proxy {
            sandboxes.attach(proxy: proxy)
        } else if options.sandbox.systemdEnabled {
            if let managed = plans.plans.first(where: { $0.kind == .managed }) {
                logger.warning(
                    "plan '\(managed.id)' is managed, but this daemon runs no metering proxy: its agents would have no way out; start it with --proxy 127.0.0.1:8787"
                )
            }
            if let brokered = plans.plans.first(where: \.isBrokered) {
                logger.warning(
                    "plan '\(brokered.id)' brokers keys, which the metering proxy does, and this daemon runs none: its starts are refused; start it with --proxy 127.0.0.1:8787"
                )
            }
        }
        self.options = options
        self.httpClient = httpClient
        self.logger = logger
    }

    /// The routes the admin API serves, as `METHOD /path` (for the OpenAPI check).
    public static func routeList(plane: ControlPlane) -> [String] { routeTable(plane: plane).routes }

    /// The routes (`METHOD /path`) a tenant token may call on its own tenant; every other route answers it 403.
    public static func tenantRouteList(plane: ControlPlane) -> Set<String> { routeTable(plane: plane).tenantRoutes }

    /// Every admin route registered on a router that serves nothing.
    private static func routeTable(plane: ControlPlane) -> RouteTable {
        let table = RouteTable(router: Router(context: AdminContext.self))
        AdminRoutes.register(on: table, plane: plane, version: "test")
        return table
    }

    /// Serves until SIGTERM/SIGINT (or `shutdown` is triggered), then stops cleanly.
    /// - Parameter onReady: called once every listener is bound.
    public func run(handleSignals: Bool = true, onReady: @escaping @Sendable () -> Void = {}) async throws {
        try prepareSocketPath()
        if let proxySocket = options.proxy?.socketPath {
            let directory = (proxySocket as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        }
        let listeners =
            (options.tcpAddress == nil ? 1 : 2) + (proxy?.listenerCount ?? 0) + (options.metricsAddress == nil ? 0 : 1)
            + (options.console == nil ? 0 : 1)
        let ready = ReadyCounter(expected: listeners) { [socketPath = options.socketPath, logger] in
            chmod(socketPath, 0o660)
            SystemdNotifier.notify("READY=1")
            logger.info("keyhold is serving on \(socketPath)")
            onReady()
        }
        // The reconciler and the watchdog may have nothing to do (no systemd, no watchdog): their return must not stop the group.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: makeApplication(address: .unixDomainSocket(path: options.socketPath), transport: .unixSocket, ready: ready)),
            .init(service: SandboxReconciler(sandboxes: plane.sandboxes), successTerminationBehavior: .ignore),
            .init(service: WarmPoolKeeper(sandboxes: plane.sandboxes), successTerminationBehavior: .ignore),
            .init(
                service: HostHeartbeat(
                    store: plane.store, host: options.host, instance: instance, logger: logger, sandboxes: plane.sandboxes, vaults: plane.vaults,
                    fences: options.database != nil)),
            .init(service: WatchdogService(), successTerminationBehavior: .ignore),
            .init(
                service: KeyHealthMonitor(plane: plane, callsPerSecondPerProvider: options.keyChecks.callsPerSecondPerProvider, logger: logger),
                successTerminationBehavior: .ignore),
        ]
        if let tcp = options.tcpAddress {
            let (host, port) = try Self.parseLoopback(tcp)
            services.append(.init(service: makeApplication(address: .hostname(host, port: port), transport: .tcp, ready: ready)))
        }
        if let metrics = options.metricsAddress {
            let (host, port) = try ListenAddress.parse(
                metrics, option: "--metrics", example: "127.0.0.1:9464", loopbackOnly: false, why: "")
            let endpoint = MetricsEndpoint(plane: plane, proxy: proxy)
            services.append(.init(service: endpoint.application(address: .hostname(host, port: port), logger: logger) { ready.arrive() }))
        }
        if let console = options.console {
            services.append(.init(service: try ConsoleServer.application(plane: plane, options: console, logger: logger) { ready.arrive() }))
        }
        if let proxy {
            // Shut down in reverse order: the listeners finish their requests first, then the flusher writes the last usage.
            services.append(.init(service: proxy.usageFlusher))
            services += proxy.listeners { ready.arrive() }.map { .init(service: $0) }
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [], logger: logger)
        )
        await shutdownHandle.set(group)
        // An interrupted KEK rotation resumes in the background while the daemon serves.
        if !plane.vault.previous.isEmpty {
            Task { [plane, logger] in
                do {
                    let count = try await plane.rewrapAll()
                    logger.info("resumed KEK rotation: rewrapped \(count) data keys")
                } catch {
                    logger.error("resuming the KEK rotation failed: \(error)")
                }
            }
        }
        defer { SystemdNotifier.notify("STOPPING=1") }
        try await group.run()
        unlink(options.socketPath)
    }

    /// Asks a running `run()` to stop gracefully (for in-process use: tests and the demo).
    public func shutdown() async {
        await shutdownHandle.trigger()
    }

    private let shutdownHandle = ShutdownHandle()

    private func makeApplication(address: BindAddress, transport: AdminAuthMiddleware.Transport, ready: ReadyCounter) -> some Service {
        Application(
            router: Self.adminRouter(plane: plane, transport: transport, version: options.version, consoleURL: options.console?.publicURL),
            configuration: .init(address: address, serverName: "keyhold"), onServerRunning: { _ in ready.arrive() }, logger: logger
        )
    }

    /// The admin API as served on `transport`: errors as JSON, the lease's 503, authentication, then the routes.
    static func adminRouter(
        plane: ControlPlane, transport: AdminAuthMiddleware.Transport, version: String, consoleURL: String? = nil
    ) -> Router<AdminContext> {
        let router = Router(context: AdminContext.self)
        router.add(middleware: ErrorMiddleware())
        router.add(middleware: LeaseMiddleware(lease: plane.sandboxes.lease))
        router.add(middleware: AdminAuthMiddleware(transport: transport, store: plane.store))
        AdminRoutes.register(on: RouteTable(router: router), plane: plane, version: version, consoleURL: consoleURL)
        return router
    }

    /// Creates the socket's directory and removes a stale socket left by a killed daemon; refuses to steal a live one.
    private func prepareSocketPath() throws {
        let directory = (options.socketPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        guard FileManager.default.fileExists(atPath: options.socketPath) else { return }
        if UnixSocketProbe.isListening(options.socketPath) {
            throw KeyholdError.conflict("another keyhold daemon is serving on \(options.socketPath): stop it first, or pass --socket")
        }
        unlink(options.socketPath)
    }

    /// Refuses to start with a KEK that cannot open the stored keys (a wrong or swapped KEK file).
    static func checkKEKMatches(vault: Vault, store: Store, path: String) throws {
        let foreign = try store.readNow { tx in try tx.wrappedKeyCounts() }.map(\.kekID)
            .first { id in !([vault.kek] + vault.previous).contains { $0.id == id } }
        if let foreign {
            throw VaultError(
                .kekMismatch,
                "the KEK at \(path) (id \(vault.kek.id)) is not the one the stored keys were sealed with (id \(foreign)): restore the right KEK file; nothing was changed"
            )
        }
    }

    static func parseLoopback(_ text: String) throws -> (String, Int) {
        try ListenAddress.parse(text, option: "--tcp", example: "127.0.0.1:8700", loopbackOnly: true, why: "the admin API is not for the network")
    }
}

/// Calls `action` once `expected` listeners have reported that they are bound.
final class ReadyCounter: Sendable {
    private let state: Mutex<Int>
    private let action: @Sendable () -> Void

    init(expected: Int, action: @escaping @Sendable () -> Void) {
        state = Mutex(expected)
        self.action = action
    }

    func arrive() {
        let remaining = state.withLock { value -> Int in
            value -= 1
            return value
        }
        if remaining == 0 { action() }
    }
}

/// Holds the running service group so that another task can ask it to stop.
actor ShutdownHandle {
    private var group: ServiceGroup?
    private var requested = false

    func set(_ group: ServiceGroup) async {
        self.group = group
        if requested { await group.triggerGracefulShutdown() }
    }

    func trigger() async {
        requested = true
        await group?.triggerGracefulShutdown()
    }
}
