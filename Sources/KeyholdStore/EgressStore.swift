public import KeyholdCore

extension StoreTransaction {
    /// The tenant's own egress destinations (`keyhold tenant allow-egress`), in the order they were added.
    public func egressRules(tenantID: Int64) throws -> [EgressRule] {
        try rows(
            "SELECT destination, allow_private FROM tenant_egress WHERE tenant_id = ? ORDER BY created_at, destination",
            tenantID
        ).compactMap { row in try? EgressRule.parse(row["destination"], allowPrivate: row["allow_private"]) }
    }

    /// Adds (or replaces the private flag of) a destination.
    /// - Returns: false when exactly this entry was already there.
    @discardableResult
    public func allowEgress(tenantID: Int64, rule: EgressRule) throws -> Bool {
        let existing: Bool? = try value("SELECT allow_private FROM tenant_egress WHERE tenant_id = ? AND destination = ?", tenantID, rule.description)
        if existing == rule.allowPrivate { return false }
        try execute(
            """
            INSERT INTO tenant_egress (tenant_id, destination, allow_private, created_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (tenant_id, destination) DO UPDATE SET allow_private = excluded.allow_private
            """,
            tenantID, rule.description, rule.allowPrivate, Timestamp.now()
        )
        return true
    }

    /// Removes a destination.
    /// - Returns: whether it was there.
    public func denyEgress(tenantID: Int64, destination: String) throws -> Bool {
        try execute("DELETE FROM tenant_egress WHERE tenant_id = ? AND destination = ?", tenantID, destination) > 0
    }
}
