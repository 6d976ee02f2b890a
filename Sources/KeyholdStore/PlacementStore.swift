public import KeyholdCore

/// Where a tenant should run: one host of the fleet, under an epoch that grows with every placement (start, move,
/// failover). The epoch is the tenant's fencing token: a host starts and injects only under the epoch it holds, and
/// only while its own heartbeat is within its lease.
public struct PlacementRecord: Sendable, Equatable {
    public var tenantID: Int64
    public var tenant: String
    public var host: String
    public var epoch: Int64
    public var desired: DesiredState
    /// The host a drain or a failover moved the tenant from.
    public var movedFrom: String?
    /// Who placed it (the audit actor of the start it asks for).
    public var actor: String

    init(row: StoreRow) {
        tenantID = row["tenant_id"]
        tenant = row["tenant_name"]
        host = row["host"]
        epoch = row["epoch"]
        desired = DesiredState(rawValue: row["desired"]) ?? .stopped
        movedFrom = row["moved_from"]
        actor = row["actor"]
    }
}

/// A host that can take a tenant now: alive, active (not draining), below its capacity.
public struct PlacementCandidate: Sendable, Equatable {
    public var host: String
    /// Tenants placed there to run.
    public var load: Int
    public var capacity: Int
}

extension StoreTransaction {
    private static let placementColumns = "p.tenant_id, t.name AS tenant_name, p.host, p.epoch, p.desired, p.moved_from, p.actor"

    /// The tenant's placement, if it was ever started with placements.
    public func placement(tenantID: Int64) throws -> PlacementRecord? {
        try row(
            "SELECT \(Self.placementColumns) FROM placements p JOIN tenants t ON t.id = p.tenant_id WHERE p.tenant_id = ?", tenantID
        ).map(PlacementRecord.init(row:))
    }

    /// The hosts that can take one more tenant, least loaded first (ties by id), on the database's clock.
    public func placementCandidates() throws -> [PlacementCandidate] {
        try rows(
            """
            SELECT h.id, h.max_sandboxes,
            (SELECT COUNT(*) FROM placements p WHERE p.host = h.id AND p.desired = 'running') AS load
            FROM hosts h WHERE h.state = 'active' AND \(dialect.nowMilliseconds) - h.heartbeat_ms < h.lease_ms
            """
        ).map { PlacementCandidate(host: $0["id"], load: $0["load"], capacity: $0["max_sandboxes"]) }
            .filter { $0.load < $0.capacity }
            .sorted { ($0.load, $0.host) < ($1.load, $1.host) }
    }

    /// Places the tenant on `host` to run, under a new epoch.
    /// - Returns: the new epoch.
    @discardableResult
    public func place(tenantID: Int64, on host: String, actor: String, movedFrom: String? = nil) throws -> Int64 {
        let epoch: Int64? = try value(
            """
            INSERT INTO placements (tenant_id, host, epoch, desired, moved_from, actor, updated_at) VALUES (?, ?, 1, 'running', ?, ?, ?)
            ON CONFLICT (tenant_id) DO UPDATE SET host = excluded.host, epoch = placements.epoch + 1, desired = 'running',
            moved_from = excluded.moved_from, actor = excluded.actor, updated_at = excluded.updated_at RETURNING epoch
            """, tenantID, host, movedFrom, actor, Timestamp.now())
        guard let epoch else { throw StoreError("the database returned no epoch for a placement") }
        return epoch
    }

    /// Records that the tenant should stay stopped (a stop, a suspension, a start that failed), if its placement is
    /// still `epoch` (any epoch when nil).
    public func stopPlacement(tenantID: Int64, epoch: Int64? = nil) throws {
        if let epoch {
            try execute(
                "UPDATE placements SET desired = 'stopped', updated_at = ? WHERE tenant_id = ? AND epoch = ?", Timestamp.now(), tenantID, epoch)
        } else {
            try execute("UPDATE placements SET desired = 'stopped', updated_at = ? WHERE tenant_id = ?", Timestamp.now(), tenantID)
        }
    }

    /// Records that the tenant should run again where it is placed, under the same epoch (a restart on its host).
    public func resumePlacement(tenantID: Int64) throws {
        try execute("UPDATE placements SET desired = 'running', updated_at = ? WHERE tenant_id = ?", Timestamp.now(), tenantID)
    }

    /// The tenant's sandbox started under `epoch`, if any.
    public func sandbox(tenantID: Int64, epoch: Int64) throws -> SandboxRecord? {
        try row("SELECT * FROM sandboxes WHERE tenant_id = ? AND epoch = ? ORDER BY id DESC LIMIT 1", tenantID, epoch)
            .map(SandboxRecord.init(row:))
    }

    /// How many tenants are placed on `host` to run.
    public func placementLoad(host: String) throws -> Int {
        try value("SELECT COUNT(*) FROM placements WHERE host = ? AND desired = 'running'", host) ?? 0
    }

    /// Placements on `host` waiting for their start: to run, and no sandbox started under their epoch yet.
    public func pendingPlacements(host: String) throws -> [PlacementRecord] {
        try rows(
            """
            SELECT \(Self.placementColumns) FROM placements p JOIN tenants t ON t.id = p.tenant_id
            WHERE p.host = ? AND p.desired = 'running'
            AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.tenant_id = p.tenant_id AND s.epoch = p.epoch)
            ORDER BY p.tenant_id
            """, host
        ).map(PlacementRecord.init(row:))
    }

    /// Placements to run whose host missed its lease (or was forgotten), oldest tenants first.
    public func orphanedPlacements(limit: Int) throws -> [PlacementRecord] {
        try rows(
            """
            SELECT \(Self.placementColumns) FROM placements p JOIN tenants t ON t.id = p.tenant_id LEFT JOIN hosts h ON h.id = p.host
            WHERE p.desired = 'running' AND (h.id IS NULL OR \(dialect.nowMilliseconds) - h.heartbeat_ms >= h.lease_ms)
            ORDER BY p.tenant_id LIMIT ?
            """, limit
        ).map(PlacementRecord.init(row:))
    }

    /// Moves an orphaned placement to `host` under a new epoch, if it is still the one read and its host is still
    /// past its lease; the lost host's sandboxes of the tenant are recorded stopped and their proxy tokens revoked.
    /// - Returns: the new epoch, or nil when another host claimed it first or its host came back.
    public func claimOrphan(_ orphan: PlacementRecord, by host: String, actor: String) throws -> Int64? {
        try lockTenant(id: orphan.tenantID)
        let claimed: Int64? = try value(
            """
            UPDATE placements SET host = ?, epoch = epoch + 1, moved_from = ?, actor = ?, updated_at = ?
            WHERE tenant_id = ? AND epoch = ? AND host = ? AND desired = 'running'
            AND NOT EXISTS (SELECT 1 FROM hosts h WHERE h.id = ? AND \(dialect.nowMilliseconds) - h.heartbeat_ms < h.lease_ms)
            RETURNING epoch
            """, host, orphan.host, actor, Timestamp.now(), orphan.tenantID, orphan.epoch, orphan.host, orphan.host)
        guard let claimed else { return nil }
        let lost = try liveSandboxes(tenantID: orphan.tenantID).filter { $0.host == orphan.host }
        for sandbox in lost {
            try updateSandbox(sandbox.id, state: .stopped, lastError: "host '\(orphan.host)' lost its lease: the tenant moved to '\(host)'")
            try setDesiredState(sandboxID: sandbox.id, desired: .stopped)
            try revokeProxyTokens(sandboxID: sandbox.id)
        }
        try appendAudit(
            AuditEvent(
                actor: actor, action: .sandboxFailover, tenant: orphan.tenant, unit: lost.first?.unit, invocationID: lost.first?.invocationID,
                details: ["from_host": orphan.host, "to_host": host, "epoch": String(claimed)]))
        return claimed
    }

    /// This host's running sandboxes whose tenant was placed elsewhere and whose new sandbox runs there: a move
    /// (drain) is complete and the old sandbox should go.
    public func movedAwaySandboxes(host: String) throws -> [(tenant: String, sandbox: SandboxRecord)] {
        try rows(
            """
            SELECT s.*, t.name AS tenant_name FROM sandboxes s JOIN tenants t ON t.id = s.tenant_id
            JOIN placements p ON p.tenant_id = s.tenant_id
            WHERE s.host = ? AND s.state = 'running' AND p.host != ?
            AND EXISTS (SELECT 1 FROM sandboxes n WHERE n.tenant_id = p.tenant_id AND n.epoch = p.epoch AND n.host = p.host AND n.state = 'running')
            """, host, host
        ).map { (tenant: $0["tenant_name"] as String, sandbox: SandboxRecord(row: $0)) }
    }

    /// The fencing check of a start: `host` holds the tenant's placement under `epoch`, and its own heartbeat is
    /// within its lease, on the database's clock.
    /// - Throws: `KeyholdError.conflict` naming what was lost.
    public func requireLease(tenantID: Int64, host: String, epoch: Int64) throws {
        guard let placement = try placement(tenantID: tenantID), placement.desired == .running else {
            throw KeyholdError.conflict("the tenant is no longer placed to run: nothing was injected")
        }
        guard placement.host == host, placement.epoch == epoch else {
            throw KeyholdError.conflict(
                "host '\(host)' no longer holds the tenant's lease (epoch \(epoch); now epoch \(placement.epoch) on host '\(placement.host)'): nothing was injected"
            )
        }
        let fresh: Int64? = try value(
            "SELECT 1 FROM hosts WHERE id = ? AND \(dialect.nowMilliseconds) - heartbeat_ms < lease_ms", host)
        guard fresh != nil else {
            throw KeyholdError.conflict("host '\(host)' is past its lease in the database: nothing was injected")
        }
    }

    /// Marks the host draining (it takes no new tenant) and places each of its tenants on the least loaded other
    /// host with room, under new epochs; each old sandbox stays until the new one runs.
    /// - Returns: the tenants moved and how many found no room anywhere (they stay).
    public func drainHost(id: String, actor: String) throws -> (moved: [String], left: Int) {
        guard try execute("UPDATE hosts SET state = 'draining' WHERE id = ?", id) == 1 else {
            throw KeyholdError.notFound("no host named '\(id.prefix(63))': see `keyhold host list`")
        }
        let placed = try rows(
            """
            SELECT \(Self.placementColumns) FROM placements p JOIN tenants t ON t.id = p.tenant_id
            WHERE p.host = ? AND p.desired = 'running' ORDER BY p.tenant_id
            """, id
        ).map(PlacementRecord.init(row:))
        var candidates = try placementCandidates()
        var moved: [String] = []
        for placement in placed {
            guard let index = candidates.indices.min(by: { (candidates[$0].load, candidates[$0].host) < (candidates[$1].load, candidates[$1].host) })
            else { break }
            try lockTenant(id: placement.tenantID)
            try place(tenantID: placement.tenantID, on: candidates[index].host, actor: actor, movedFrom: id)
            moved.append(placement.tenant)
            candidates[index].load += 1
            if candidates[index].load >= candidates[index].capacity { candidates.remove(at: index) }
        }
        return (moved, placed.count - moved.count)
    }

    /// Sets a host `active` again after a drain.
    public func activateHost(id: String) throws {
        guard try execute("UPDATE hosts SET state = 'active' WHERE id = ?", id) == 1 else {
            throw KeyholdError.notFound("no host named '\(id.prefix(63))': see `keyhold host list`")
        }
    }

    /// How many hosts are alive and take tenants (for each host's fair share of a failover).
    public func activeHostCount() throws -> Int {
        try value("SELECT COUNT(*) FROM hosts WHERE state = 'active' AND \(dialect.nowMilliseconds) - heartbeat_ms < lease_ms") ?? 0
    }
}
