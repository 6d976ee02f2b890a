import Foundation
public import KeyholdCore
import KeyholdProxy
import KeyholdStore

extension ControlPlane {
    /// Onboards a tenant onto a plan.
    public func createTenant(_ request: AdminAPI.CreateTenant, actor: String) async throws -> AdminAPI.Tenant {
        let name = try TenantName(request.name)
        guard name.value != Self.platformTenant else {
            throw KeyholdError.invalidInput("'\(Self.platformTenant)' is reserved for the platform's own keys: pick another tenant name")
        }
        let plan = try plans.plan(request.plan)
        let agent = try Self.checkAgent(request.agent ?? SandboxService.defaultAgent)
        let tenant = try await audited { tx in
            let tenant = try tx.insertTenant(name: name, plan: plan.id, agent: agent, agentNotify: request.agentNotify ?? false)
            return (tenant, [AuditEvent(actor: actor, action: .tenantCreate, tenant: name.value, details: ["plan": plan.id])])
        }
        return tenant.api(keys: [])
    }

    public func listTenants() async throws -> [AdminAPI.Tenant] {
        try await store.read { tx in
            try tx.allTenants().filter { $0.name != Self.platformTenant }.map {
                $0.api(keys: try tx.keyVersions(tenantID: $0.id))
            }
        }
    }

    public func showTenant(_ name: String) async throws -> AdminAPI.Tenant {
        try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            var api = tenant.api(keys: try tx.keyVersions(tenantID: tenant.id))
            api.egress = try self.egressEntries(tenant: tenant, in: tx)
            return api
        }
    }

    /// Moves a tenant to another plan. Its running sandbox keeps its old limits until restarted.
    public func setPlan(_ name: String, plan planID: String, actor: String) async throws -> AdminAPI.Tenant {
        let plan = try plans.plan(planID)
        return try await audited { tx in
            let tenant = try tx.tenant(named: name)
            guard tenant.plan != plan.id else {
                throw KeyholdError.conflict("tenant '\(name)' is already on plan '\(plan.id)'")
            }
            try tx.updateTenant(tenant.id, plan: plan.id)
            let event = AuditEvent(actor: actor, action: .tenantPlan, tenant: name, details: ["from": tenant.plan, "to": plan.id])
            return (try tx.tenant(named: name).api(keys: try tx.keyVersions(tenantID: tenant.id)), [event])
        }
    }

    /// Sets the limits a tenant puts on its own keys' brokered use (all fields absent: no limits). They hold from the
    /// next request on, checked by the broker inside its sandboxes as strictly as a managed plan's caps.
    public func setKeyCaps(_ name: String, caps: KeyCaps, actor: String) async throws -> AdminAPI.Tenant {
        try caps.validate()
        return try await audited { tx in
            let tenant = try tx.tenant(named: name)
            try tx.setKeyCaps(tenantID: tenant.id, caps.isEmpty ? nil : caps)
            var details: [String: String] = [:]
            details["tokens_per_day"] = caps.tokensPerDay.map(String.init) ?? "none"
            details["tokens_per_month"] = caps.tokensPerMonth.map(String.init) ?? "none"
            details["requests_per_minute"] = caps.requestsPerMinute.map(String.init) ?? "none"
            details["usd_per_month"] = caps.usdPerMonth.map { String($0) } ?? "none"
            let event = AuditEvent(actor: actor, action: .tenantKeyCaps, tenant: name, details: details)
            return (try tx.tenant(named: name).api(keys: try tx.keyVersions(tenantID: tenant.id)), [event])
        }
    }

    /// What a tenant's alert webhook may be: `deploy/openapi.yaml` states the same pattern (`SetAlertWebhook.url`).
    static let webhookPattern =
        #"^https?://[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?(:[0-9]{1,5})?(/([A-Za-z0-9._~!$&'()*+,;=:@/?#-]|%[0-9A-Fa-f]{2})*)?$"#

    /// Sets the URL the tenant's usage alerts are POSTed to (nil: the plan's webhook, if any).
    /// The audit record names the host only: a webhook URL often carries a secret in its path.
    public func setAlertWebhook(_ name: String, url: String?, actor: String) async throws -> AdminAPI.Tenant {
        let host: String?
        if let url {
            guard url.utf8.count <= 2048, url.range(of: Self.webhookPattern, options: .regularExpression) != nil,
                let found = URLComponents(string: url)?.host, !found.isEmpty
            else {
                throw KeyholdError.invalidInput(
                    "the alert webhook must be an http:// or https:// URL with a host name, an optional port and a path of URL characters (percent-encode anything else)"
                )
            }
            if let refusal = sandboxes.configuration.tenantDestinations.refusalOfAddress(in: url, subject: "the alert webhook") {
                throw KeyholdError.invalidInput(refusal)
            }
            host = found
        } else {
            host = nil
        }
        return try await audited { tx in
            let tenant = try tx.tenant(named: name)
            try tx.updateTenant(tenant.id, alertWebhook: url)
            let event = AuditEvent(actor: actor, action: .tenantAlertWebhook, tenant: name, details: ["webhook_host": host ?? "none (the plan's)"])
            return (try tx.tenant(named: name).api(keys: try tx.keyVersions(tenantID: tenant.id)), [event])
        }
    }

    /// Suspends a tenant: its sandboxes are stopped and stay stopped until resumed.
    public func suspendTenant(_ name: String, actor: String) async throws -> AdminAPI.Tenant {
        let tenant = try await audited { tx in
            let tenant = try tx.tenant(named: name)
            guard tenant.state != .suspended else { throw KeyholdError.conflict("tenant '\(name)' is already suspended") }
            try tx.updateTenant(tenant.id, state: .suspended)
            try tx.setDesiredState(tenantID: tenant.id, desired: .stopped)
            return (tenant, [AuditEvent(actor: actor, action: .tenantSuspend, tenant: name)])
        }
        _ = try await sandboxes.stopAll(tenant: tenant, actor: actor, reason: "tenant suspended")
        return try await showTenant(name)
    }

    public func resumeTenant(_ name: String, actor: String) async throws -> AdminAPI.Tenant {
        try await audited { tx in
            let tenant = try tx.tenant(named: name)
            guard tenant.state == .suspended else { throw KeyholdError.conflict("tenant '\(name)' is not suspended") }
            try tx.updateTenant(tenant.id, state: .active)
            let keys = try tx.keyVersions(tenantID: tenant.id)
            return (try tx.tenant(named: name).api(keys: keys), [AuditEvent(actor: actor, action: .tenantResume, tenant: name)])
        }
    }

    /// Deletes a tenant: stops its sandboxes, then destroys its keys with it.
    public func deleteTenant(_ name: String, actor: String) async throws {
        // Under the tenant's lock from the stop to the deletion: no start can run an agent on the state being deleted.
        try await sandboxes.locks.withLock(name) {
            let tenant = try await self.store.read { tx in try tx.tenant(named: name) }
            _ = try await self.sandboxes.stopLocked(tenant: tenant, actor: actor, reason: "tenant deleted", only: nil)
            // The agent's state goes with the tenant; the audit record says how much.
            let stateBytes = try await self.sandboxes.removeAgentState(tenant: name)
            try await self.audited { tx in
                let tenant = try tx.tenant(named: name)
                // Another host may have started it since the stop (its lock is this host's only): its row decides.
                try tx.lockTenant(id: tenant.id)
                if let live = try tx.liveSandboxes(tenantID: tenant.id).first {
                    throw KeyholdError.conflict(
                        "tenant '\(name)' was started again meanwhile (\(live.unit) on host '\(live.host ?? "?")'): stop it there, then delete it")
                }
                let keys = try tx.keyVersions(tenantID: tenant.id).count
                try tx.deleteTenant(tenant.id)
                // The row is gone when the record is written: the id is given, so that the tenant's history ends with it.
                let details = [
                    "destroyed_key_versions": String(keys), "deleted_state_bytes": String(stateBytes), AuditEvent.tenantIDDetail: String(tenant.id),
                ]
                return ((), [AuditEvent(actor: actor, action: .tenantDelete, tenant: name, details: details)])
            }
        }
        try store.checkpointWAL()
    }

    /// An agent command must be an absolute path and arguments without NUL bytes.
    static func checkAgent(_ agent: [String]) throws -> [String] {
        guard let path = agent.first, path.hasPrefix("/") else {
            throw KeyholdError.invalidInput("the agent command must start with an absolute path, e.g. --agent '/usr/bin/node /srv/agent/index.js'")
        }
        guard agent.allSatisfy({ !$0.contains("\0") && !$0.contains("\n") }) else {
            throw KeyholdError.invalidInput("the agent command contains a NUL byte or a line break")
        }
        return agent
    }
}
