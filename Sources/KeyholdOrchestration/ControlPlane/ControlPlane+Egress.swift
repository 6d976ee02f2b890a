import Foundation
public import KeyholdCore
import KeyholdStore

extension ControlPlane {
    /// Lets the tenant's BYOK sandboxes reach one more destination (audited). Running sandboxes may connect to it at
    /// once through their `HTTPS_PROXY`, and by name (their resolver answers it) when the gateway already listens on
    /// its port there; on a port new to them, by name from their next start.
    public func allowEgress(_ name: String, _ request: AdminAPI.AllowEgress, actor: String) async throws -> AdminAPI.Tenant {
        let rule = try EgressRule.parse(request.destination, allowPrivate: request.allowPrivate ?? false)
        // Under the tenant's lock: a start in progress gets the policy before or after this change, never loses it.
        try await sandboxes.locks.withLock(name) {
            try await self.allowEgressLocked(name, rule: rule, actor: actor)
        }
        return try await showTenant(name)
    }

    private func allowEgressLocked(_ name: String, rule: EgressRule, actor: String) async throws {
        let tenant = try await audited { tx in
            let tenant = try tx.tenant(named: name)
            guard try self.plans.plan(tenant.plan).kind == .byok else {
                throw KeyholdError.conflict(
                    "tenant '\(name)' is on a managed plan: its agent's only way out is the metering proxy; egress entries apply to BYOK plans")
            }
            let changed = try tx.allowEgress(tenantID: tenant.id, rule: rule)
            guard changed else { throw KeyholdError.conflict("tenant '\(name)' may already reach \(rule)") }
            let event = AuditEvent(
                actor: actor, action: .egressAllow, tenant: name,
                details: ["destination": rule.description, "allow_private": String(rule.allowPrivate)])
            return (tenant, [event])
        }
        try await sandboxes.refreshEgress(tenant: tenant.name)
    }

    /// Removes one of the tenant's own destinations (audited); running sandboxes' new connections are refused at once.
    public func denyEgress(_ name: String, destination: String, actor: String) async throws -> AdminAPI.Tenant {
        // Any destination an entry may hold: a private address (allowed with --private) or a wildcard (never private).
        let rule = try (try? EgressRule.parse(destination, allowPrivate: true)) ?? EgressRule.parse(destination, allowPrivate: false)
        try await sandboxes.locks.withLock(name) {
            try await self.denyEgressLocked(name, rule: rule, actor: actor)
        }
        return try await showTenant(name)
    }

    private func denyEgressLocked(_ name: String, rule: EgressRule, actor: String) async throws {
        try await audited { tx in
            let tenant = try tx.tenant(named: name)
            guard try tx.denyEgress(tenantID: tenant.id, destination: rule.description) else {
                throw KeyholdError.notFound(
                    "tenant '\(name)' has no egress entry \(rule): `keyhold tenant show \(name)` lists them (those from keys and plans cannot be removed here)"
                )
            }
            return ((), [AuditEvent(actor: actor, action: .egressDeny, tenant: name, details: ["destination": rule.description])])
        }
        try await sandboxes.refreshEgress(tenant: name)
    }

    /// The tenant's destinations with their sources (nil on managed plans).
    func egressEntries(tenant: TenantRecord, in tx: StoreTransaction) throws -> [AdminAPI.EgressEntry]? {
        let plan = try plans.plan(tenant.plan)
        guard plan.kind == .byok else { return nil }
        return try SandboxService.egressPolicy(of: tenant, plan: plan, in: tx).entries.map {
            .init(destination: $0.rule.description, allowPrivate: $0.rule.allowPrivate, source: $0.source)
        }
    }
}
