import KeyholdCore

extension StoreTransaction {
    /// Records that a tenant's sandbox made a Responses API response (kept when it was recorded already).
    public func recordResponseOwner(responseID: String, tenantID: Int64, sandboxID: Int64?) throws {
        _ = try execute(
            "INSERT INTO response_owners (response_id, tenant_id, sandbox_id, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (response_id) DO NOTHING",
            responseID, tenantID, sandboxID, Timestamp.now())
    }

    /// The tenant whose sandbox made a Responses API response, if this installation's proxy saw it made.
    public func responseOwner(responseID: String) throws -> Int64? {
        try value("SELECT tenant_id FROM response_owners WHERE response_id = ?", responseID)
    }
}
