import Foundation
public import KeyholdCore

/// A tenant as stored.
public struct TenantRecord: Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var plan: String
    /// `active` or `suspended`.
    public var state: TenantState
    /// The agent's argv inside the sandbox.
    public var agent: [String]
    /// Whether the agent sends `READY=1` through sd_notify (its unit is then `Type=notify`).
    public var agentNotify: Bool
    /// Where this tenant's usage alerts are POSTed (replaces the plan's), or nil.
    public var alertWebhook: String?
    /// The provider whose invalid key moved the agent to its plan's managed fallback, while it does.
    public var fallbackProvider: String?
    /// The limits the tenant set on its own keys' brokered use, or nil.
    public var keyCaps: KeyCaps?
    public var createdAt: String

    init(row: StoreRow) {
        id = row["id"]
        name = row["name"]
        plan = row["plan"]
        state = TenantState(rawValue: row["state"]) ?? .suspended  // runs nothing
        let agentJSON: String = row["agent"]
        agent = (try? JSONDecoder().decode([String].self, from: Data(agentJSON.utf8))) ?? []
        createdAt = row["created_at"]
        agentNotify = row["agent_notify"]
        alertWebhook = row["alert_webhook"]
        fallbackProvider = row["fallback_provider"]
        let capsJSON: String? = row["key_caps"]
        keyCaps = capsJSON.flatMap { try? JSONDecoder().decode(KeyCaps.self, from: Data($0.utf8)) }
    }

}

extension StoreTransaction {
    /// Sets (or with nil, clears) the limits a tenant sets on its own keys' brokered use.
    public func setKeyCaps(tenantID: Int64, _ caps: KeyCaps?) throws {
        let json = try caps.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) }
        try execute("UPDATE tenants SET key_caps = ? WHERE id = ?", json, tenantID)
    }

    /// Finds a tenant by name inside a transaction.
    /// - Throws: `KeyholdError.notFound` when there is none.
    public func tenant(named name: String) throws -> TenantRecord {
        guard let row = try row("SELECT * FROM tenants WHERE name = ?", name) else {
            throw KeyholdError.unknownTenant(name)
        }
        return TenantRecord(row: row)
    }

    /// Inserts a tenant inside a transaction.
    /// - Throws: `KeyholdError.conflict` when the name is taken.
    public func insertTenant(
        name: TenantName, plan: String, agent: [String], agentNotify: Bool = false
    ) throws -> TenantRecord {
        if try row("SELECT 1 FROM tenants WHERE name = ?", name.value) != nil {
            throw KeyholdError.conflict("a tenant named '\(name)' already exists: pick another name or `keyhold tenant show \(name)`")
        }
        let now = Timestamp.now()
        let agentJSON = String(decoding: try JSONEncoder().encode(agent), as: UTF8.self)
        // An id is never given twice: audit records are bound to it. PostgreSQL's identity never reuses one; SQLite's
        // rowid would give a deleted newest tenant's id to the next, so the next id is past every id ever recorded.
        let id =
            dialect == .postgres
            ? "DEFAULT"
            : "(SELECT MAX(COALESCE((SELECT MAX(id) FROM tenants), 0), COALESCE((SELECT MAX(tenant_id) FROM audit), 0)) + 1)"
        try execute(
            "INSERT INTO tenants (id, name, plan, state, agent, agent_notify, created_at, updated_at) VALUES (\(id), ?, ?, 'active', ?, ?, ?, ?)",
            name.value, plan, agentJSON, agentNotify, now, now
        )
        return try tenant(named: name.value)
    }

    /// The id of the live tenant of that name, for reading its records.
    /// - Throws: `KeyholdError.notFound` naming the way to a deleted tenant's records (by its id).
    public func liveTenantID(named name: String) throws -> Int64 {
        guard let id: Int64 = try row("SELECT id FROM tenants WHERE name = ?", name)?["id"] else {
            throw KeyholdError.notFound(
                "no tenant is named '\(name.prefix(64))' now; a deleted tenant's records are listed by its id (audit list --tenant-id N; its tenant.delete record gives the id)"
            )
        }
        return id
    }

    public func tenant(id: Int64) throws -> TenantRecord? {
        try row("SELECT * FROM tenants WHERE id = ?", id).map(TenantRecord.init(row:))
    }

    public func allTenants() throws -> [TenantRecord] {
        try rows("SELECT * FROM tenants ORDER BY name").map(TenantRecord.init(row:))
    }

    public func updateTenant(_ id: Int64, plan: String? = nil, state: TenantState? = nil) throws {
        let now = Timestamp.now()
        if let plan { try execute("UPDATE tenants SET plan = ?, updated_at = ? WHERE id = ?", plan, now, id) }
        if let state { try execute("UPDATE tenants SET state = ?, updated_at = ? WHERE id = ?", state.rawValue, now, id) }
    }

    /// Sets (or with nil clears) the tenant's alert webhook.
    public func updateTenant(_ id: Int64, alertWebhook: String?) throws {
        try execute("UPDATE tenants SET alert_webhook = ?, updated_at = ? WHERE id = ?", alertWebhook, Timestamp.now(), id)
    }

    /// Deletes a tenant; its key versions (ciphertexts and wrapped data keys), sandboxes and tokens go with it.
    public func deleteTenant(_ id: Int64) throws {
        try execute("DELETE FROM tenants WHERE id = ?", id)
    }
}

extension PlanCatalog {
    /// The plan the tenant's agent runs on now: its own, or its plan's managed fallback while its key is invalid.
    public func effectivePlan(for tenant: TenantRecord) throws -> Plan {
        try effectivePlan(id: tenant.plan, fallbackProvider: tenant.fallbackProvider)
    }
}
