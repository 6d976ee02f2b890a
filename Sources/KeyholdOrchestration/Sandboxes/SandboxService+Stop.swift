import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore

extension SandboxService {
    /// Stops the tenant's live sandboxes (those matching `only`), revokes their proxy tokens and records it.
    /// - Returns: the sandboxes stopped, as they were read before the stop.
    func stopLocked(
        tenant: TenantRecord, actor: String, reason: String, only: (@Sendable (SandboxRecord) -> Bool)?
    ) async throws -> [SandboxRecord] {
        let sandboxes = try await store.write { tx in
            let all = try tx.liveSandboxes(tenantID: tenant.id)
            let live = all.filter { only?($0) ?? true }
            try self.requireOurs(live, tenant: tenant.name)
            // Nothing left running: the tenant stays stopped wherever it was placed.
            if live.count == all.count { try tx.stopPlacement(tenantID: tenant.id) }
            for sandbox in live { try tx.updateSandbox(sandbox.id, state: .stopping) }
            for sandbox in live { try tx.setDesiredState(sandboxID: sandbox.id, desired: .stopped) }
            return live
        }
        var stopped: [SandboxRecord] = []
        for sandbox in sandboxes {
            if let systemd {
                let timeout = configuration.jobTimeout
                try await systemd.stopUnit(name: sandbox.unit, timeout: timeout)
                try? await systemd.resetFailedUnit(name: sandbox.unit)
            } else if sandbox.state == .running {
                _ = try requireSystemd()
            }
            boundary.close(unit: sandbox.unit)
            try await store.write { tx in
                try tx.updateSandbox(sandbox.id, state: .stopped, lastError: sandbox.lastError)
                try tx.revokeProxyTokens(sandboxID: sandbox.id)
                try tx.appendAudit(
                    AuditEvent(
                        actor: actor, action: .sandboxStop, tenant: tenant.name, unit: sandbox.unit, invocationID: sandbox.invocationID,
                        details: ["reason": reason]
                    )
                )
            }
            stopped.append(sandbox)
        }
        if !stopped.isEmpty { await releaseUsageWindows(tenantID: tenant.id) }
        return stopped
    }
}
