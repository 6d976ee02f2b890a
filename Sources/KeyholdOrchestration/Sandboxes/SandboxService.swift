import Foundation
public import KeyholdCore
import KeyholdEgress
public import KeyholdProxy
import KeyholdSandbox
public import KeyholdStore
public import KeyholdVault
import Logging
import Synchronization

/// Starts, stops and watches tenants' sandboxes: one transient systemd unit each, with the key
/// injected through a pipe at start.
///
/// Injection order (DESIGN.md, "Flow of a key"): make a pipe, start the unit with the pipe's read end
/// as its stdin, write and sync the `key.inject` audit records, and only then decrypt the keys, write
/// them into the pipe, close it and wipe them. No audit record, no injection.
public final class SandboxService: Sendable {
    let store: Store
    let vaults: VaultRing
    public let plans: PlanCatalog
    public let configuration: SandboxConfiguration
    let systemd: (any SystemdControl)?
    let locks = TenantLocks()
    /// Walks of agents' state trees: one per tenant at a time, off the queue systemd calls share.
    let stateMeasurements = StateMeasurements()
    /// Concurrent asks for one tenant's status share one read.
    let statusReads = TaskFlights<String, [AdminAPI.Sandbox]>()
    /// This host's hold on its leases; while fenced, the reconciler rests and the admin API answers 503.
    public let lease: HostLease
    /// Units stopped by a fence: once the host recovers, each is restarted (not counted as a crash).
    let fencedUnits = Mutex<Set<String>>([])
    let profiles = ProfileCache()
    let logger: Logger
    /// The sandboxes' ways out: listeners inside their network namespaces.
    let boundary: SandboxBoundary
    /// Units started ahead for plans with `warm_pool:`, each waiting for the one start that takes it.
    let warmPool = WarmPool()
    /// Where the units' listeners and mounts are made.
    let namespaces: any UnitNamespaces
    /// systemd's signals about our units: the reconciler reacts to them instead of reading every unit's status, and a
    /// readiness wait hears a new unit's end as it happens.
    let unitStates = UnitStates()
    /// The task that follows systemd's signals into ``unitStates``, once started.
    private let unitFollower = Mutex<Task<Void, Never>?>(nil)
    /// Where a test stops this service as a crash would (``CrashPoints``); in production the `KEYHOLD_FAULT` points.
    let crashPoints: CrashPoints

    /// The agent used when a tenant names none: it reports a hash of each key it holds, never the key, then waits.
    public static let defaultAgent = [
        "/bin/sh", "-c",
        """
        for v in ANTHROPIC_API_KEY OPENAI_API_KEY GEMINI_API_KEY KEYHOLD_PROXY_TOKEN; do \
        eval "val=\\${$v:-}"; [ -n "$val" ] && echo "agent holds $v sha256:$(printf %s "$val" | sha256sum | cut -c1-16)"; \
        done; exec sleep infinity
        """,
    ]

    /// A service on this host's systemd (or the one at `configuration.systemdBus`), over sd-bus.
    /// - Throws: when the egress gateway's trust roots (`SandboxConfiguration.egressTrustRoots`) cannot be loaded.
    public convenience init(store: Store, vaults: VaultRing, plans: PlanCatalog, configuration: SandboxConfiguration, logger: Logger) throws {
        try self.init(
            store: store, vaults: vaults, plans: plans, configuration: configuration,
            systemd: configuration.systemdEnabled ? BusSystemd(address: configuration.systemdBus) : nil,
            namespaces: HostNamespaces(root: configuration.systemdRoot, mountHelperPath: configuration.mountHelperPath), logger: logger)
    }

    /// A service on any systemd: `systemd` nil disables sandboxes.
    /// - Parameter crashPoints: where the service stops as a killed daemon would (tests); the `KEYHOLD_FAULT` points by default.
    /// - Throws: when the egress gateway's trust roots (`SandboxConfiguration.egressTrustRoots`) cannot be loaded.
    public init(
        store: Store, vaults: VaultRing, plans: PlanCatalog, configuration: SandboxConfiguration, systemd: (any SystemdControl)?,
        namespaces: any UnitNamespaces, crashPoints: CrashPoints = .environment, logger: Logger
    ) throws {
        self.store = store
        self.vaults = vaults
        self.plans = plans
        self.configuration = configuration
        self.systemd = systemd
        self.namespaces = namespaces
        self.crashPoints = crashPoints
        self.logger = logger
        self.lease = HostLease(duration: configuration.leaseDuration)
        self.boundary = SandboxBoundary(
            gateway: try EgressGateway(
                resolver: configuration.egressResolver, logger: logger, additionalTrustRoots: configuration.egressTrustRoots),
            systemdRoot: configuration.systemdRoot, namespaces: namespaces, logger: logger)
        // A unit that dies before reading its pipe must not kill the daemon with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
    }

    /// Follows systemd's signals about Keyhold's units into ``unitStates`` (once; later calls do nothing).
    func followUnits() {
        guard let systemd else { return }
        unitFollower.withLock { follower in
            guard follower == nil else { return }
            let events = systemd.unitEvents(prefixes: ["keyhold-", WarmPool.unitPrefix])
            follower = Task { [unitStates] in
                for await event in events { unitStates.apply(event) }
            }
        }
    }

    /// Stops following systemd's signals.
    func stopFollowingUnits() {
        unitFollower.withLock { follower in
            follower?.cancel()
            follower = nil
        }
    }

    /// Managed sandboxes reach this proxy at `http://127.0.0.1:8787` inside their namespace.
    public func attach(proxy: MeteringProxy) { boundary.attach(proxy: proxy) }

    /// Connections the egress gateway refused, for `/v1/health`.
    public var egressRefusedConnections: Int { boundary.gateway.refusedConnections }

    /// The metering proxy attached to the sandboxes' boundary, if any.
    public var attachedProxy: MeteringProxy? { boundary.attachedProxy }

    /// Units waiting in each plan's warm pool, by plan id.
    public var warmPoolCounts: [String: Int] { warmPool.counts }

    /// A one-word description of the systemd in use, for `/v1/health`.
    public var systemdDescription: String { systemd?.location ?? "disabled" }

    func requireSystemd() throws -> any SystemdControl {
        guard let systemd else {
            throw KeyholdError.unavailable(
                "sandboxes are disabled: no systemd is reachable from this daemon; start `keyhold serve` on a host run by systemd, or pass --systemd-bus unix:path=... (see deploy/private-systemd.sh)"
            )
        }
        return systemd
    }

    // MARK: Operations

    /// Places the tenant on the least loaded host with room (or `host`), which starts its sandbox and injects its
    /// keys; waits until it runs there.
    public func start(tenant name: String, actor: String, host: String? = nil) async throws -> AdminAPI.Sandbox {
        try await locks.withLock(name) { try await self.startLocked(tenant: name, actor: actor, restarts: 0, placement: .place(pin: host)) }
    }

    /// Stops the tenant's sandboxes; they stay stopped, and so does a tenant whose agent had already exited.
    /// - Returns: the sandboxes this call stopped, as they are now; empty when none was running (not an error: the
    ///   tenant is stopped, as asked).
    public func stop(tenant name: String, actor: String) async throws -> [AdminAPI.Sandbox] {
        let tenant = try await store.read { tx in try tx.tenant(named: name) }
        let stopped = try await locks.withLock(name) {
            try await self.stopLocked(tenant: tenant, actor: actor, reason: "stopped by \(actor)", only: nil)
        }
        guard !stopped.isEmpty else { return [] }
        let records = try await store.read { tx in try stopped.compactMap { try tx.sandbox(id: $0.id) } }
        return records.map { $0.api(tenant: tenant.name, systemdState: nil) }
    }

    /// Stops the tenant's sandboxes, then starts a fresh one (a new, audited injection).
    public func restart(tenant name: String, actor: String) async throws -> AdminAPI.Sandbox {
        try await locks.withLock(name) {
            let tenant = try await self.store.read { tx in try tx.tenant(named: name) }
            _ = try await self.stopLocked(tenant: tenant, actor: actor, reason: "restart", only: nil)
            return try await self.startLocked(tenant: name, actor: actor, restarts: 0)
        }
    }

    /// The tenant's live sandboxes with systemd's view of each.
    public func status(tenant name: String) async throws -> [AdminAPI.Sandbox] {
        try await statusReads.run(name) { try await self.readStatus(tenant: name) }
    }

    private func readStatus(tenant name: String) async throws -> [AdminAPI.Sandbox] {
        let (tenant, sandboxes) = try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            return (tenant, try tx.liveSandboxes(tenantID: tenant.id))
        }
        var result: [AdminAPI.Sandbox] = []
        let plan = try? plans.effectivePlan(for: tenant)
        for sandbox in sandboxes {
            result.append(await withBoundary(sandbox.api(tenant: tenant.name, systemdState: await systemdState(of: sandbox.unit)), plan: plan))
        }
        return result
    }

    /// Every live sandbox of the fleet, each naming its host (systemd's view and the boundary's only for this
    /// host's).
    public func list() async throws -> [AdminAPI.Sandbox] {
        let all = try await store.read { tx in try tx.allLiveSandboxes() }
        var result: [AdminAPI.Sandbox] = []
        for (tenant, sandbox) in all {
            guard isOurs(sandbox) else {
                result.append(sandbox.api(tenant: tenant, systemdState: nil))
                continue
            }
            result.append(await withBoundary(sandbox.api(tenant: tenant, systemdState: await systemdState(of: sandbox.unit)), plan: nil))
        }
        return result
    }

    /// Whether `sandbox` runs on this host (a sandbox from before hosts were recorded does).
    func isOurs(_ sandbox: SandboxRecord) -> Bool { sandbox.host == nil || sandbox.host == configuration.hostID }

    /// Refuses to act on sandboxes another host runs: only that host's systemd can start, stop or replace them.
    func requireOurs(_ sandboxes: [SandboxRecord], tenant: String) throws {
        if let other = sandboxes.first(where: { !isOurs($0) }), let host = other.host {
            throw KeyholdError.conflict(
                "tenant '\(tenant)' runs on host '\(host)' (\(other.unit)): send this to that host's admin API"
            )
        }
    }

    /// The newest sandbox's journal lines.
    public func logs(tenant name: String, lines: Int) async throws -> AdminAPI.Logs {
        let sandbox = try await store.read { tx -> SandboxRecord? in
            let tenant = try tx.tenant(named: name)
            return try tx.latestSandbox(tenantID: tenant.id)
        }
        guard let sandbox else { throw KeyholdError.notFound("tenant '\(name)' has never had a sandbox: `keyhold sandbox start \(name)`") }
        let directory = configuration.journalDirectory
        let text = try await Blocking.run { try UnitJournal.lines(unit: sandbox.unit, journalDirectory: directory, limit: lines) }
        return AdminAPI.Logs(unit: sandbox.unit, lines: text)
    }

    /// Stops every live sandbox of a tenant (suspension, deletion).
    /// - Returns: the units stopped.
    public func stopAll(tenant: TenantRecord, actor: String, reason: String) async throws -> [String] {
        try await locks.withLock(tenant.name) { try await self.stopLocked(tenant: tenant, actor: actor, reason: reason, only: nil) }.map(\.unit)
    }

    /// Stops the sandboxes that hold one of `keyVersions` (`provider:version`), for a revocation.
    public func stopUsing(keyVersions: Set<String>, tenant: TenantRecord, actor: String, reason: String) async throws -> [String] {
        try await locks.withLock(tenant.name) {
            try await self.stopLocked(tenant: tenant, actor: actor, reason: reason) { !keyVersions.isDisjoint(with: $0.keyVersions) }.map(\.unit)
        }
    }

    func systemdState(of unit: String) async -> String? {
        guard let systemd else { return nil }
        guard let status = try? await systemd.unitStatus(name: unit) else { return "not loaded" }
        return "\(status.activeState)/\(status.subState)"
    }
}
