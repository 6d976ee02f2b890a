import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore

extension SandboxService {
    static let recoveryActor = "keyhold-recovery"

    /// Converges after a daemon was killed: finishes or undoes interrupted rotations, settles sandboxes caught
    /// half-started or half-stopped, and stops units of this installation's tenants that no record owns.
    /// Runs once, before the reconciler's first pass.
    public func recoverAfterRestart() async throws {
        let systemd = try requireSystemd()
        for rotation in try await store.read({ [host = configuration.hostID] tx in try tx.runningRotations(host: host) }) {
            guard let tenant = try await store.read({ tx in try tx.tenant(id: rotation.tenantID) }) else { continue }
            try await locks.withLock(tenant.name) {
                if [.newReady, .stoppingOld].contains(rotation.step) {
                    // The new agents were ready: finish the rotation.
                    let old = Set(rotation.oldUnits)
                    _ = try await self.stopLocked(tenant: tenant, actor: Self.recoveryActor, reason: "rotation completed after a restart") {
                        old.contains($0.unit)
                    }
                    for unit in rotation.oldUnits {
                        try await systemd.stopUnit(name: unit, timeout: self.configuration.jobTimeout)
                    }
                    try await self.finish(rotation, tenant: tenant, actor: Self.recoveryActor, outcome: .completedAfterRestart)
                } else {
                    try await self.rollBack(
                        rotation, tenant: tenant, newUnits: rotation.newUnits, actor: Self.recoveryActor,
                        reason: "the daemon stopped during the rotation (step \(rotation.step.rawValue)); rolled back"
                    )
                }
            }
        }
        try await settleInterruptedSandboxes(systemd: systemd)
        try await stopOrphanedUnits(systemd: systemd)
        try await reopenBoundaries(
            systemd: systemd, live: try await store.read { [host = configuration.hostID] tx in try tx.allLiveSandboxes(host: host) })
    }

    /// A sandbox left `starting` never got its key (the pipe's writer died): its unit is stopped and the row marked
    /// `running`, so the reconciler sees it down and restarts it with a fresh injection. One left `stopping` is stopped.
    ///
    /// Each is read again under its tenant's lock: the admin API serves while recovery runs, and a start or stop this
    /// daemon is carrying out holds that lock and leaves its sandbox running or stopped, not interrupted.
    private func settleInterruptedSandboxes(systemd: any SystemdControl) async throws {
        let all = try await store.read { [host = configuration.hostID] tx in try tx.allLiveSandboxes(host: host) }
        for (tenant, found) in all where [.starting, .stopping].contains(found.state) {
            try await locks.withLock(tenant) {
                guard let sandbox = try await self.store.read({ tx in try tx.sandbox(id: found.id) }), sandbox.state == found.state else { return }
                let unit = sandbox.unit
                try await systemd.stopUnit(name: unit, timeout: self.configuration.jobTimeout)
                try? await systemd.resetFailedUnit(name: unit)
                try await self.store.write { tx in
                    let next: SandboxState = sandbox.state == .starting && sandbox.desired == .running ? .running : .stopped
                    try tx.updateSandbox(sandbox.id, state: next, lastError: "interrupted by a daemon restart")
                    if next == .stopped { try tx.revokeProxyTokens(sandboxID: sandbox.id) }
                }
            }
        }
    }

    /// Stops `keyhold-TENANT-N.service` units of our tenants that no live sandbox record names. Each tenant's units are
    /// listed and its records read under its lock, so that a start in flight (its unit up, its record not yet written)
    /// is never taken for an orphan.
    private func stopOrphanedUnits(systemd: any SystemdControl) async throws {
        let tenants = try await store.read { tx in try tx.allTenants() }
        for record in tenants {
            let tenant = record.name
            try await locks.withLock(tenant) {
                let units = try await systemd.listUnits(matching: "keyhold-\(tenant)-*.service")
                guard !units.isEmpty else { return }
                let live = try await self.store.read { tx in Set(try tx.liveSandboxes(tenantID: record.id).map(\.unit)) }
                for unit in units
                where !live.contains(unit) && unit.range(of: "^keyhold-\(tenant)-[0-9]+\\.service$", options: .regularExpression) != nil {
                    let status = try await systemd.unitStatus(name: unit)
                    guard let status, status.activeState != "inactive" else { continue }
                    try await systemd.stopUnit(name: unit, timeout: self.configuration.jobTimeout)
                    try? await systemd.resetFailedUnit(name: unit)
                    try await self.store.write { tx in
                        _ = try tx.appendAudit(
                            AuditEvent(
                                actor: Self.recoveryActor, action: .sandboxStop, tenant: tenant, unit: unit, details: ["reason": "orphaned unit"])
                        )
                    }
                }
            }
        }
    }
}
