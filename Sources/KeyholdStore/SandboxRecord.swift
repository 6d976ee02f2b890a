public import KeyholdCore

/// A tenant's sandbox (one transient systemd unit) as Keyhold tracks it.
public struct SandboxRecord: Sendable, Equatable {
    public var id: Int64
    public var tenantID: Int64
    public var unit: String
    /// starting, running, stopping, stopped, failed.
    public var state: SandboxState
    /// running or stopped: what the reconciler converges on.
    public var desired: DesiredState
    public var invocationID: String?
    public var mainPID: Int?
    /// `provider:version` of each injected key (or `proxy-token` on managed plans).
    public var keyVersions: [String]
    public var restarts: Int
    public var lastError: String?
    public var updatedAt: String
    /// The host it runs on.
    public var host: String?
    /// The placement epoch it was started under (its fencing token); nil before placements existed.
    public var epoch: Int64?

    init(row: StoreRow) {
        id = row["id"]
        tenantID = row["tenant_id"]
        unit = row["unit"]
        // The schema's CHECK constraints allow nothing else; an unknown value reads as the state that runs nothing.
        state = SandboxState(rawValue: row["state"]) ?? .failed
        desired = DesiredState(rawValue: row["desired"]) ?? .stopped
        invocationID = row["invocation_id"]
        mainPID = row["main_pid"]
        let versions: String = row["key_versions"]
        keyVersions = versions.split(separator: " ").map(String.init)
        restarts = row["restarts"]
        lastError = row["last_error"]
        updatedAt = row["updated_at"]
        host = row["host"]
        epoch = row["epoch"]
    }

}

extension StoreTransaction {
    /// Inserts a sandbox in state `starting`; the unit name is derived from its id unless `unit` names one (a warm
    /// pool's unit, already running).
    public func insertSandbox(
        tenantID: Int64, tenantName: String, restarts: Int = 0, host: String? = nil, epoch: Int64? = nil, unit: String? = nil
    ) throws -> SandboxRecord {
        let now = Timestamp.now()
        let inserted: Int64? = try value(
            """
            INSERT INTO sandboxes (tenant_id, unit, state, desired, restarts, created_at, updated_at, host, epoch)
            VALUES (?, '', 'starting', 'running', ?, ?, ?, ?, ?) RETURNING id
            """,
            tenantID, restarts, now, now, host, epoch
        )
        guard let id = inserted else { throw StoreError("the database returned no row for a new sandbox") }
        try execute("UPDATE sandboxes SET unit = ? WHERE id = ?", unit ?? "keyhold-\(tenantName)-\(id).service", id)
        return try sandbox(id: id)!
    }

    public func sandbox(id: Int64) throws -> SandboxRecord? {
        try row("SELECT * FROM sandboxes WHERE id = ?", id).map(SandboxRecord.init(row:))
    }

    /// A tenant's newest sandbox, whatever its state.
    public func latestSandbox(tenantID: Int64) throws -> SandboxRecord? {
        try row("SELECT * FROM sandboxes WHERE tenant_id = ? ORDER BY id DESC LIMIT 1", tenantID)
            .map(SandboxRecord.init(row:))
    }

    /// A tenant's sandboxes that are not stopped, newest first.
    public func liveSandboxes(tenantID: Int64) throws -> [SandboxRecord] {
        try rows(
            "SELECT * FROM sandboxes WHERE tenant_id = ? AND state != 'stopped' ORDER BY id DESC", tenantID
        ).map(SandboxRecord.init(row:))
    }

    /// Every sandbox not stopped, with its tenant's name: the fleet's, or one host's (with those that name no host,
    /// from before hosts were recorded).
    public func allLiveSandboxes(host: String? = nil) throws -> [(tenant: String, sandbox: SandboxRecord)] {
        if let host {
            return try rows(
                "SELECT s.*, t.name AS tenant_name FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id "
                    + "WHERE s.state != 'stopped' AND (s.host = ? OR s.host IS NULL) ORDER BY t.name, s.id", host
            ).map { (tenant: $0["tenant_name"] as String, sandbox: SandboxRecord(row: $0)) }
        }
        return try rows(
            "SELECT s.*, t.name AS tenant_name FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id WHERE s.state != 'stopped' ORDER BY t.name, s.id"
        ).map { (tenant: $0["tenant_name"] as String, sandbox: SandboxRecord(row: $0)) }
    }

    /// Marks the tenant's failed sandboxes stopped (a new start clears the failure the reconciler gave up on).
    public func clearFailedSandboxes(tenantID: Int64) throws {
        try execute(
            "UPDATE sandboxes SET state = 'stopped', updated_at = ? WHERE tenant_id = ? AND state = 'failed'",
            Timestamp.now(), tenantID)
    }

    /// Updates a sandbox's observed state and the facts that came with it.
    public func updateSandbox(
        _ id: Int64, state: SandboxState, invocationID: String? = nil, mainPID: Int? = nil, keyVersions: [String]? = nil, lastError: String? = nil,
    ) throws {
        try execute(
            """
            UPDATE sandboxes SET state = ?, invocation_id = COALESCE(?, invocation_id), main_pid = COALESCE(?, main_pid),
            key_versions = COALESCE(?, key_versions), last_error = ?, updated_at = ? WHERE id = ?
            """,
            state.rawValue, invocationID, mainPID, keyVersions?.joined(separator: " "), lastError, Timestamp.now(), id
        )
    }

    /// Sets what every live sandbox of a tenant should converge on.
    public func setDesiredState(tenantID: Int64, desired: DesiredState) throws {
        try execute(
            "UPDATE sandboxes SET desired = ?, updated_at = ? WHERE tenant_id = ? AND state != 'stopped'",
            desired.rawValue, Timestamp.now(), tenantID
        )
    }

    public func setDesiredState(sandboxID: Int64, desired: DesiredState) throws {
        try execute("UPDATE sandboxes SET desired = ?, updated_at = ? WHERE id = ?", desired.rawValue, Timestamp.now(), sandboxID)
    }
}
