import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import Logging
import ServiceLifecycle
import Synchronization

/// Converges systemd on the database: restarts crashed agents (each restart a fresh, audited
/// injection, with exponential back-off), reports a sandbox failed after too many crashes in a row,
/// and stops units that should not run.
public struct SandboxReconciler: Service {
    let sandboxes: SandboxService

    public init(sandboxes: SandboxService) { self.sandboxes = sandboxes }

    public func run() async throws {
        guard sandboxes.systemd != nil else { return }
        do {
            try await sandboxes.recoverAfterRestart()
        } catch {
            sandboxes.logger.error("recovery after restart: \(error)")
        }
        let interval = sandboxes.configuration.reconcileInterval
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        sandboxes.followUnits()
        defer { sandboxes.stopFollowingUnits() }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                // A unit that stopped, failed or went away: a pass now. Starts need none.
                let changes = sandboxes.unitStates.allChanges()
                group.addTask {
                    for await event in changes {
                        if case .changed(_, let state) = event, SandboxService.aliveStates.contains(state) { continue }
                        wake.yield()
                    }
                }
                // Placements, desired states, boundaries and state limits are read from the database every interval.
                group.addTask {
                    while !Task.isCancelled {
                        wake.yield()
                        try? await Task.sleep(for: interval)
                    }
                }
                // A slow resynchronisation: each unit's status is read once a minute, whatever a lost signal hid.
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(60))
                        sandboxes.unitStates.forgetAll()
                    }
                }
                group.addTask {
                    for await _ in wakes {
                        do {
                            try await sandboxes.reconcileOnce()
                        } catch {
                            sandboxes.logger.warning("reconcile: \(error)")
                        }
                    }
                }
                await group.next()
                group.cancelAll()
            }
        }
    }
}

extension SandboxService {
    static let reconcilerActor = "keyhold-reconciler"

    /// One pass of the reconciler.
    public func reconcileOnce() async throws {
        let systemd = try requireSystemd()
        // A fenced host touches nothing until it holds its leases again.
        guard lease.fencedReason == nil else { return }
        if let host = configuration.hostID { try await reconcilePlacements(host: host) }
        let live = try await store.read { [host = configuration.hostID] tx in try tx.allLiveSandboxes(host: host) }
        Telemetry.reconcilerPass()
        for (tenantName, sandbox) in live where sandbox.state == .running {
            let alive = try await isAlive(unit: sandbox.unit, systemd: systemd)
            if sandbox.desired == .stopped {
                if alive {
                    let tenant = try await store.read { tx in try tx.tenant(named: tenantName) }
                    _ = try await stopAll(tenant: tenant, actor: Self.reconcilerActor, reason: "not desired")
                }
                continue
            }
            guard !alive else { continue }
            try await handleCrash(of: sandbox, tenant: tenantName)
        }
        // Listeners of sandboxes that are gone (stopped elsewhere, crashed, rolled back) are closed.
        // One read after the crashes were handled serves the boundaries' upkeep.
        let stillLive = try await store.read { [host = configuration.hostID] tx in try tx.allLiveSandboxes(host: host) }
        boundary.sweep(keeping: Set(stillLive.map(\.sandbox.unit)))
        try await reopenBoundaries(systemd: systemd, live: stillLive)
        try await enforceStateLimits(live: stillLive)
    }

    /// States in which a unit's agent counts as running.
    static let aliveStates: Set<String> = ["active", "activating", "reloading", "deactivating"]

    /// Whether the unit runs, from systemd's signals; over the bus only for a unit not seen since they began.
    private func isAlive(unit: String, systemd: any SystemdControl) async throws -> Bool {
        if let state = unitStates.activeState(of: unit) { return Self.aliveStates.contains(state) }
        let token = unitStates.token
        let status = try await systemd.unitStatus(name: unit)
        unitStates.seed(unit: unit, activeState: status?.activeState ?? UnitStates.removedState, readAt: token)
        return status.map { Self.aliveStates.contains($0.activeState) } ?? false
    }

    private func handleCrash(of sandbox: SandboxRecord, tenant name: String) async throws {
        try await locks.withLock(name) {
            // The pass read its rows before taking the lock: a stop, restart or rotation may have happened since.
            let current = try await self.store.read { tx in try tx.sandbox(id: sandbox.id) }
            guard let current, current.state == .running, current.desired == .running else { return }
            // Confirmed over the bus (a signal says a unit stopped; its status says how).
            var status: UnitStatus?
            if let systemd = self.systemd {
                let unit = sandbox.unit
                status = try await systemd.unitStatus(name: unit)
                // Handled (or found running after all): its next state comes as a signal, or from one read.
                self.unitStates.forget(unit: unit)
                if let status, Self.aliveStates.contains(status.activeState) { return }
            }
            let exit = status.map { "result=\($0.result ?? "?") status=\($0.execMainStatus.map(String.init) ?? "?")" } ?? "unit gone"
            let tenant = try await self.store.read { tx in try tx.tenant(named: name) }
            // Stopped by this host's fence, not by a crash: restarted at once, as a first start.
            let fenced = self.fencedUnits.withLock { $0.remove(sandbox.unit) != nil }
            // A sandbox that ran long enough counts as healthy: its crash starts a new series.
            let ranFor = Timestamp.parse(sandbox.updatedAt).map { Date().timeIntervalSince($0) } ?? 0
            let restarts = ranFor > 300 || fenced ? 0 : sandbox.restarts
            let giveUp = restarts >= self.configuration.maximumRestarts
            try await self.store.write { tx in
                try tx.updateSandbox(
                    sandbox.id, state: giveUp ? .failed : .stopped, lastError: fenced ? "stopped by the host's fence" : "agent exited: \(exit)")
                try tx.revokeProxyTokens(sandboxID: sandbox.id)
                if giveUp, let epoch = sandbox.epoch { try tx.stopPlacement(tenantID: sandbox.tenantID, epoch: epoch) }
                try tx.appendAudit(
                    AuditEvent(
                        actor: Self.reconcilerActor, action: fenced ? .sandboxFenced : giveUp ? .sandboxFail : .sandboxCrash, tenant: name,
                        outcome: .failed, unit: sandbox.unit, invocationID: sandbox.invocationID,
                        details: fenced ? ["reason": "the host lost its lease"] : ["exit": exit, "restarts": String(restarts)]
                    )
                )
            }
            self.boundary.close(unit: sandbox.unit)
            await self.releaseUsageWindows(tenantID: sandbox.tenantID)
            try? await self.systemd?.resetFailedUnit(name: sandbox.unit)
            guard !giveUp, tenant.state == .active else { return }
            let delay = fenced ? Duration.zero : min(self.configuration.restartBackoff * (1 << min(restarts, 6)), .seconds(30))
            self.scheduleRestart(of: sandbox, tenant: name, restarts: restarts + 1, after: delay)
        }
    }

    /// Restarts a crashed agent once its back-off has passed, in a task of its own: neither the reconciler's pass
    /// nor the tenant's lock waits for the back-off, so another tenant's crash, a placement or a stop of this tenant
    /// goes ahead meanwhile. At the end of the back-off the restart happens only if the tenant still wants this agent:
    /// still active, placed here under the crashed sandbox's epoch, and with nothing started since.
    private func scheduleRestart(of crashed: SandboxRecord, tenant name: String, restarts: Int, after delay: Duration) {
        Task {
            if delay > .zero { try? await Task.sleep(for: delay) }
            do {
                try await locks.withLock(name) {
                    guard self.lease.fencedReason == nil else { return }
                    let wanted = try await self.store.read { tx -> Bool in
                        guard let current = try tx.sandbox(id: crashed.id), current.state == .stopped, current.desired == .running,
                            try tx.liveSandboxes(tenantID: crashed.tenantID).isEmpty, try tx.tenant(named: name).state == .active
                        else { return false }
                        guard let epoch = crashed.epoch else { return true }
                        let placement = try tx.placement(tenantID: crashed.tenantID)
                        return placement?.desired == .running && placement?.epoch == epoch
                    }
                    guard wanted else { return }
                    Telemetry.reconcilerRestart()
                    _ = try await self.startLocked(tenant: name, actor: Self.reconcilerActor, restarts: restarts)
                }
            } catch {
                self.logger.warning("restarting tenant '\(name)' after a crash failed: \(error)")
            }
        }
    }
}
