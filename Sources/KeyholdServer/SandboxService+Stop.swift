import Foundation
import GRDB
import KeyholdCore
import KeyholdSandbox
import KeyholdStore

extension SandboxService {
    /// Stops the tenant's live sandboxes (those matching `only`), revokes their proxy tokens and records it.
    /// - Returns: the units stopped.
    func stopLocked(tenant: TenantRecord, actor: String, reason: String, only: (@Sendable (SandboxRecord) -> Bool)?) async throws -> [String] {
        let sandboxes = try await store.database.write { db in
            let live = try Store.liveSandboxes(tenantID: tenant.id, in: db).filter { only?($0) ?? true }
            for sandbox in live { try Store.updateSandbox(sandbox.id, state: .stopping, in: db) }
            for sandbox in live { try Store.setDesiredState(sandboxID: sandbox.id, desired: .stopped, in: db) }
            return live
        }
        var stopped: [String] = []
        for sandbox in sandboxes {
            if let systemd {
                let timeout = configuration.jobTimeout
                try await Blocking.run {
                    try systemd.stopUnit(name: sandbox.unit, timeout: timeout)
                    try? systemd.resetFailedUnit(name: sandbox.unit)
                }
            } else if sandbox.state == .running {
                _ = try requireSystemd()
            }
            boundary.close(unit: sandbox.unit)
            try await store.database.write { db in
                try Store.updateSandbox(sandbox.id, state: .stopped, lastError: sandbox.lastError, in: db)
                try TokenStore.revokeProxyTokens(sandboxID: sandbox.id, in: db)
                try AuditLog.append(
                    AuditEvent(
                        actor: actor, action: "sandbox.stop", tenant: tenant.name, unit: sandbox.unit, invocationID: sandbox.invocationID,
                        details: ["reason": reason]
                    ),
                    in: db
                )
            }
            stopped.append(sandbox.unit)
        }
        return stopped
    }
}
