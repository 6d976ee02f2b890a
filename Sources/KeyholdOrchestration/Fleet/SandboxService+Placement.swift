import Foundation
import KeyholdCore
import KeyholdProxy
import KeyholdSandbox
import KeyholdStore
import Logging
import Synchronization

extension SandboxService {
    /// How a start relates to the tenant's placement (its host and epoch in the fleet).
    enum StartPlacement: Sendable {
        /// A start asked for by a caller: the tenant is placed on the least loaded host with room (or `pin`), under
        /// a new epoch, and started here only if that host is this one.
        case place(pin: String?)
        /// The start a placement on this host waits for, under the epoch it names.
        case claimed(epoch: Int64)
        /// A start on this host under the tenant's current placement: a crash restart, a restart, a rotation's
        /// second unit. Refused if the tenant was placed on another host meanwhile.
        case keep
    }

    /// What the start's transaction decided.
    enum PlacementDecision: Sendable {
        /// Start here, under this epoch (nil on a daemon without a host id).
        case here(epoch: Int64?)
        /// Placed on another host, which starts it.
        case elsewhere(host: String, epoch: Int64)
        /// A pending placement already served, stopped or moved: nothing to do.
        case superseded
    }

    /// A pending start that found its placement served, stopped or moved meanwhile.
    struct StartSuperseded: Error {}

    /// Applies `placement` inside the start's transaction (the tenant's row is locked).
    func resolvePlacement(_ placement: StartPlacement, tenant: TenantRecord, actor: String, tx: StoreTransaction) throws -> PlacementDecision {
        guard let me = configuration.hostID else { return .here(epoch: nil) }
        let current = try tx.placement(tenantID: tenant.id)
        switch placement {
        case .place(let pin):
            if let current, current.desired == .running, try tx.sandbox(tenantID: tenant.id, epoch: current.epoch) == nil {
                throw KeyholdError.conflict(
                    "tenant '\(tenant.name)' is being started on host '\(current.host)': see `keyhold sandbox status \(tenant.name)`")
            }
            let target = try chooseHost(pin: pin, tx: tx)
            let epoch = try tx.place(tenantID: tenant.id, on: target, actor: actor)
            return target == me ? .here(epoch: epoch) : .elsewhere(host: target, epoch: epoch)
        case .claimed(let epoch):
            guard let current, current.host == me, current.epoch == epoch, current.desired == .running,
                try tx.sandbox(tenantID: tenant.id, epoch: epoch) == nil
            else { return .superseded }
            return .here(epoch: epoch)
        case .keep:
            guard let current else { return .here(epoch: try tx.place(tenantID: tenant.id, on: me, actor: actor)) }
            guard current.host == me else {
                throw KeyholdError.conflict("tenant '\(tenant.name)' was placed on host '\(current.host)' meanwhile: it starts there")
            }
            if current.desired != .running { try tx.resumePlacement(tenantID: tenant.id) }
            return .here(epoch: current.epoch)
        }
    }

    /// The host a start goes to: `pin` if it can take it, else the least loaded active host with room.
    private func chooseHost(pin: String?, tx: StoreTransaction) throws -> String {
        let candidates = try tx.placementCandidates()
        if let pin {
            if candidates.contains(where: { $0.host == pin }) { return pin }
            guard let host = try tx.hosts().first(where: { $0.id == pin }) else {
                throw KeyholdError.notFound("no host named '\(pin.prefix(63))': see `keyhold host list`")
            }
            if host.isDown { throw KeyholdError.unavailable("host '\(pin)' is down (no heartbeat for \(host.heartbeatAgeMilliseconds) ms)") }
            if host.state != "active" { throw KeyholdError.conflict("host '\(pin)' is \(host.state): it takes no new tenant") }
            throw KeyholdError.unavailable(
                "host '\(pin)' is full (\(host.maxSandboxes) sandboxes, --max-sandboxes): stop one, or start this tenant on another host")
        }
        guard let best = candidates.first else {
            if let me = configuration.hostID, let capacity = configuration.maxSandboxes, try tx.hosts().count == 1 {
                throw KeyholdError.unavailable("host '\(me)' is full (\(capacity) sandboxes, --max-sandboxes): stop one, or add a host")
            }
            throw KeyholdError.unavailable("no host has room: every active host is full, draining or down (see `keyhold host list`)")
        }
        return best.host
    }

    /// Waits until the host a tenant was placed on has started it (or failed to), reading the store.
    func waitForStart(tenant: TenantRecord, on host: String, epoch: Int64) async throws -> AdminAPI.Sandbox {
        let patience = configuration.jobTimeout + configuration.reconcileInterval * 4 + .seconds(5)
        let deadline = ContinuousClock.now + patience
        while ContinuousClock.now < deadline {
            let (sandbox, placement) = try await store.read { tx in
                (try tx.sandbox(tenantID: tenant.id, epoch: epoch), try tx.placement(tenantID: tenant.id))
            }
            if let sandbox {
                switch sandbox.state {
                case .running: return sandbox.api(tenant: tenant.name, systemdState: nil)
                case .stopped, .failed:
                    throw KeyholdError.failed("host '\(host)' could not start tenant '\(tenant.name)': \(sandbox.lastError ?? "no reason recorded")")
                case .starting, .stopping: break
                }
            } else if placement?.epoch != epoch || placement?.desired != .running {
                throw KeyholdError.conflict("tenant '\(tenant.name)' was stopped or placed again before host '\(host)' started it")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw KeyholdError.unavailable(
            "tenant '\(tenant.name)' was placed on host '\(host)', which has not started it within \(patience): see `keyhold sandbox status \(tenant.name)`"
        )
    }

    // MARK: The fleet's share of a reconciler pass

    /// Claims this host's fair share of the tenants whose host lost its lease, starts the tenants placed here,
    /// and stops sandboxes whose tenant now runs on another host.
    func reconcilePlacements(host me: String) async throws {
        try await failOver(host: me)
        try await startPending(host: me)
        let moved = try await store.read { tx in try tx.movedAwaySandboxes(host: me) }
        for (tenantName, sandbox) in moved {
            do {
                try await locks.withLock(tenantName) {
                    let tenant = try await self.store.read { tx in try tx.tenant(named: tenantName) }
                    _ = try await self.stopLocked(tenant: tenant, actor: Self.reconcilerActor, reason: "moved to another host") {
                        $0.id == sandbox.id
                    }
                }
            } catch {
                logger.error("\(sandbox.unit): stopping it after its tenant moved: \(error)")
            }
        }
    }

    static let failoverActor = "keyhold-failover"

    private func failOver(host me: String) async throws {
        let (orphans, share) = try await store.read { tx -> ([PlacementRecord], Int) in
            guard let mine = try tx.hosts().first(where: { $0.id == me }), mine.state == "active", !mine.isDown else { return ([], 0) }
            let orphans = try tx.orphanedPlacements(limit: 10_000)
            guard !orphans.isEmpty else { return ([], 0) }
            let load = try tx.placementLoad(host: me)
            let hosts = max(1, try tx.activeHostCount())
            let fair = (orphans.count + hosts - 1) / hosts
            return (orphans, max(0, min(mine.maxSandboxes - load, fair)))
        }
        // Hosts claim from different ends of the list, so that they rarely race for one tenant.
        let ordered = me.hashValue & 1 == 0 ? orphans : orphans.reversed()
        var claimed = 0
        for orphan in ordered where claimed < share {
            let epoch = try await store.write { tx in try tx.claimOrphan(orphan, by: me, actor: Self.failoverActor) }
            if epoch != nil {
                claimed += 1
                logger.warning("tenant '\(orphan.tenant)': host '\(orphan.host)' lost its lease; starting it here")
            }
        }
    }

    private func startPending(host me: String) async throws {
        let pending = try await store.read { tx in try tx.pendingPlacements(host: me) }
        guard !pending.isEmpty else { return }
        // Several at once (a failover brings many: systemd runs their jobs side by side), each under its tenant's lock.
        await withTaskGroup(of: Void.self) { group in
            var next = pending.makeIterator()
            for _ in 0..<Self.pendingStartsInFlight {
                guard let placement = next.next() else { break }
                group.addTask { await self.startPending(placement) }
            }
            while await group.next() != nil {
                guard let placement = next.next() else { continue }
                group.addTask { await self.startPending(placement) }
            }
        }
    }

    /// How many pending placements one host starts at once.
    static let pendingStartsInFlight = 16

    private func startPending(_ placement: PlacementRecord) async {
        do {
            _ = try await locks.withLock(placement.tenant) {
                try await self.startLocked(tenant: placement.tenant, actor: placement.actor, restarts: 0, placement: .claimed(epoch: placement.epoch))
            }
        } catch is StartSuperseded {
        } catch {
            logger.error("tenant '\(placement.tenant)', placed on this host: its start failed: \(error)")
        }
    }

    // MARK: Fencing

    /// Stops every agent this daemon runs, at once and without the database: the host lost its leases.
    func fence(reason: String) async {
        guard let systemd else { return }
        let units = boundary.openUnits
        fencedUnits.withLock { $0.formUnion(units) }
        boundary.attachedProxy?.forgetAllUsage()
        logger.critical("fenced: \(reason); stopping \(units.count) agent(s)")
        await withTaskGroup(of: Void.self) { group in
            for unit in units {
                group.addTask {
                    try? await systemd.killUnit(name: unit, signal: SIGKILL)
                    try? await systemd.stopUnit(name: unit, timeout: .seconds(5))
                    self.boundary.close(unit: unit)
                }
            }
        }
        // Read every unit again once the host recovers: what it stopped is handled from systemd's own answer.
        unitStates.forgetAll()
    }

    /// Forgets the tenant's usage windows in this host's proxy once none of its sandboxes runs here (caps follow the
    /// tenant across hosts through the database).
    func releaseUsageWindows(tenantID: Int64) async {
        guard let proxy = boundary.attachedProxy else { return }
        let remaining = try? await store.read { tx in try tx.liveSandboxes(tenantID: tenantID).filter(self.isOurs) }
        if remaining?.isEmpty == true { proxy.forgetUsage(tenantID: tenantID) }
    }
}
