import AsyncHTTPClient
import Foundation
public import KeyholdCore
public import KeyholdOrchestration
import KeyholdProxy
import KeyholdSandbox
public import KeyholdStore
import KeyholdVault
import Logging
import Synchronization

/// One Keyhold host in this process, for orchestration tests that take milliseconds: a real state directory and
/// store (SQLite, or PostgreSQL under `KEYHOLD_TEST_STORE=postgresql`), the real ``ControlPlane`` and
/// ``SandboxService``, on an ``InMemorySystemd`` and ``LoopbackNamespaces``.
///
/// ``restart(crashPoints:)`` replaces the daemon as a restart would: a new service on the same store and the same
/// systemd, whose units outlive the old one. A crash point ``CrashPoints/parkForever(at:)`` parks the old daemon's
/// task where a `kill -9` would have stopped it.
public final class InProcessHost: Sendable {
    public let root: String
    public let state: StateDirectory
    public let store: Store
    public let systemd: InMemorySystemd
    public let namespaces: LoopbackNamespaces
    public let configuration: SandboxConfiguration
    private let plans: PlanCatalog
    private let vaults: VaultRing
    /// A fleet host's lease: the longest a host may have (`--lease-seconds 600`).
    static let fleetLease = Duration.seconds(600)

    /// The PostgreSQL database, when the store is one.
    private let databaseName: String?
    private let current: Mutex<ControlPlane>
    private let logger: Logger

    /// - Parameters:
    ///   - plans: the plans; the repository's by default.
    ///   - fleet: a host of a fleet: its id, and the host whose installation (state directory, KEK and PostgreSQL
    ///     database) it shares, or nil for the fleet's first host (its database is then PostgreSQL, whatever
    ///     `KEYHOLD_TEST_STORE` says). Each host has a systemd of its own.
    ///   - systemd: the systemd its sandboxes run under: a new one by default; another host's for two installations
    ///     on one systemd.
    ///   - configure: changes to the sandbox configuration (readiness window, restarts, job timeout...).
    public init(
        plans: PlanCatalog? = nil, crashPoints: CrashPoints = .environment, fleet: (host: String, joining: InProcessHost?)? = nil,
        systemd: InMemorySystemd = InMemorySystemd(), configure: (inout SandboxConfiguration) -> Void = { _ in }
    ) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-inprocess-\(UUID().uuidString.prefix(8))").path
        // The directories every root file system has, where the daemon writes units' name files and agents' state.
        for directory in ["/run", "/var/lib"] {
            try FileManager.default.createDirectory(atPath: root + "/systemd-root" + directory, withIntermediateDirectories: true)
        }
        if let joined = fleet?.joining {
            state = joined.state
            databaseName = joined.databaseName
        } else {
            let database =
                fleet != nil || SharedTestPostgres.serverTestsUsePostgres ? try SharedTestPostgres.makeDatabase(prefix: "inprocess") : nil
            databaseName = database?.name
            state = StateDirectory(path: root + "/state", database: database?.url)
            try state.initialize()
        }
        store = try state.openStore()
        let vault = try state.loadVault()
        vaults = VaultRing(vault)
        if let host = fleet?.host {
            // No heartbeat runs here: a lease of the longest kind keeps the host live for the test, however slow.
            try HostHeartbeat.register(
                store: store, host: HostOptions(id: host, lease: Self.fleetLease), instance: HostHeartbeat.makeInstance(), keks: vault.kekIDs)
            store.nameHost(host)
        }
        self.plans = try plans ?? PlanCatalog.load(directory: BuildProducts.plansDirectory)
        var configuration = SandboxConfiguration(
            systemdBus: nil, journalDirectory: nil, profilesDirectory: BuildProducts.profilesDirectory, execPath: "/bin/true",
            maximumRestarts: 3, restartBackoff: .milliseconds(20), reconcileInterval: .milliseconds(50), jobTimeout: .seconds(5),
            readinessWindow: .milliseconds(100))
        configuration.fileSystemRoot = root + "/systemd-root"
        configuration.hostID = fleet?.host
        configuration.installationTag = SandboxConfiguration.installationTag(stateDirectory: state.path)
        if fleet != nil { configuration.leaseDuration = Self.fleetLease }
        configure(&configuration)
        self.configuration = configuration
        self.systemd = systemd
        namespaces = LoopbackNamespaces()
        var logger = Logger(label: "keyhold.inprocess")
        logger.logLevel = .warning
        self.logger = logger
        current = Mutex(
            try Self.makePlane(
                store: store, vaults: vaults, plans: self.plans, configuration: configuration, systemd: systemd, namespaces: namespaces,
                state: state, crashPoints: crashPoints, logger: logger))
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    /// The daemon now serving.
    public var plane: ControlPlane { current.withLock { $0 } }
    public var sandboxes: SandboxService { plane.sandboxes }

    /// A new daemon on the same store and systemd, as after a restart; the old one is left as it is (parked, if it
    /// crashed). Runs the new daemon's recovery, as its reconciler does first.
    @discardableResult
    public func restart(crashPoints: CrashPoints = .environment) async throws -> ControlPlane {
        let plane = try Self.makePlane(
            store: store, vaults: vaults, plans: plans, configuration: configuration, systemd: systemd, namespaces: namespaces, state: state,
            crashPoints: crashPoints, logger: logger)
        current.withLock { $0 = plane }
        try await plane.sandboxes.recoverAfterRestart()
        return plane
    }

    /// A tenant on `plan` running `agent`, with `key` as its Anthropic key when the plan is BYOK.
    public func tenant(_ name: String, plan: String = "byok", key: String? = nil, agent: [String] = ["/bin/sh"]) async throws {
        _ = try await plane.createTenant(AdminAPI.CreateTenant(name: name, plan: plan, agent: agent), actor: "test")
        if let key {
            _ = try await plane.setKey(
                tenant: name, provider: "anthropic", AdminAPI.SetKey(key: key, baseURL: nil, validate: false, skipShapeCheck: true), actor: "test")
        }
    }

    /// Runs `sql` in the PostgreSQL database behind the store's back, as a clock or an attacker would change it.
    public func tamper(_ sql: String) throws {
        guard let databaseName else { throw HarnessError("\(root): the store is not PostgreSQL") }
        try SharedTestPostgres.get().execute(sql, database: databaseName)
    }

    /// The tenant's units systemd runs (`active`).
    public func activeUnits(tenant: String) -> [String] { systemd.activeUnits(prefix: "keyhold-\(tenant)-") }

    /// The value of `name` in what the unit's launcher received.
    public func injected(_ name: String, unit: String) async -> String? {
        await systemd.payload(of: unit)?.environment.first { $0.name == name }?.value
    }

    /// The audit records of `tenant`, oldest first.
    public func audit(tenant: String) async throws -> [AuditRecord] {
        try await plane.auditRecords(tenant: tenant, action: nil, since: nil, limit: nil).sorted { $0.seq < $1.seq }
    }

    private static func makePlane(
        store: Store, vaults: VaultRing, plans: PlanCatalog, configuration: SandboxConfiguration, systemd: InMemorySystemd,
        namespaces: LoopbackNamespaces, state: StateDirectory, crashPoints: CrashPoints, logger: Logger
    ) throws -> ControlPlane {
        let sandboxes = try SandboxService(
            store: store, vaults: vaults, plans: plans, configuration: configuration, systemd: systemd, namespaces: namespaces,
            crashPoints: crashPoints, logger: logger)
        return ControlPlane(
            store: store, vaults: vaults, plans: plans, validator: KeyValidator(httpClient: HTTPClient.shared, baseURLOverrides: [:]),
            sandboxes: sandboxes, state: state, webhooks: WebhookSender(destinations: configuration.tenantDestinations, logger: logger))
    }
}

extension CrashPoints {
    /// Parks the task that reaches `point` forever, as a `kill -9` there would stop the daemon; `parked` hears of it.
    public static func parkForever(at point: String, parked: AsyncStream<String>.Continuation) -> CrashPoints {
        CrashPoints { reached in
            guard reached == point else { return }
            parked.yield(reached)
            await withCheckedContinuation { ParkedTasks.park($0) }
        }
    }
}

/// Tasks parked at a crash point: kept (never resumed) for the life of the test process.
enum ParkedTasks {
    private static let parked = Mutex<[CheckedContinuation<Void, Never>]>([])
    static func park(_ task: CheckedContinuation<Void, Never>) { parked.withLock { $0.append(task) } }
}
