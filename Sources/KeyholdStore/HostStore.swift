import KeyholdCore

/// A host of the fleet as the database knows it.
public struct HostRecord: Sendable, Equatable {
    public var id: String
    /// `active`, or `draining` (no new sandboxes).
    public var state: String
    public var maxSandboxes: Int
    public var startedAt: String
    /// Milliseconds since the last heartbeat, on the database's clock.
    public var heartbeatAgeMilliseconds: Int64
    /// The host's own lease: past it without a heartbeat, the host is down.
    public var leaseMilliseconds: Int64
    public var isDown: Bool { heartbeatAgeMilliseconds >= leaseMilliseconds }
    /// Sandboxes not stopped that run there.
    public var liveSandboxes: Int
    /// The ids of the KEKs the host's daemon holds, its current one first.
    public var keks: [String]
}

extension StoreTransaction {
    /// Registers this daemon as host `id`, or takes the row over from an earlier daemon of the same host whose
    /// heartbeat is older than `lease`, or that `isGone` says no longer exists (given its instance).
    /// - Throws: `KeyholdError.conflict` when another daemon with the same host id is alive.
    public func registerHost(
        id: String, instance: String, maxSandboxes: Int, leaseMilliseconds: Int64, keks: [String] = [], isGone: (String) -> Bool
    ) throws {
        let now = dialect.nowMilliseconds
        if let row = try row("SELECT instance, lease_ms, \(now) - heartbeat_ms AS age FROM hosts WHERE id = ?", id) {
            let age: Int64 = row["age"]
            let previous: String = row["instance"]
            let previousLease: Int64 = row["lease_ms"]
            if previous != instance && age < previousLease && !isGone(previous) {
                throw KeyholdError.conflict(
                    "another keyhold daemon runs as host '\(id)' (its last heartbeat was \(age) ms ago): give this one another --host-id, or stop that one"
                )
            }
            // Only if the row is still the one just read: of two daemons taking a stale row over, one wins.
            let taken = try execute(
                "UPDATE hosts SET instance = ?, max_sandboxes = ?, lease_ms = ?, started_at = ?, keks = ?, heartbeat_ms = \(now) WHERE id = ? AND instance = ?",
                instance, maxSandboxes, leaseMilliseconds, Timestamp.now(), keks.joined(separator: " "), id, previous)
            guard taken == 1 else {
                throw KeyholdError.conflict("another keyhold daemon took host '\(id)' over at the same moment: give this one another --host-id")
            }
        } else {
            try execute(
                "INSERT INTO hosts (id, instance, state, max_sandboxes, lease_ms, started_at, keks, heartbeat_ms) VALUES (?, ?, 'active', ?, ?, ?, ?, \(now))",
                id, instance, maxSandboxes, leaseMilliseconds, Timestamp.now(), keks.joined(separator: " "))
        }
    }

    /// Records that this daemon is alive, and the KEKs it holds now.
    /// - Returns: false when the row is no longer this daemon's (forgotten, or taken over after a missed lease).
    public func heartbeat(hostID: String, instance: String, keks: [String] = []) throws -> Bool {
        try execute(
            "UPDATE hosts SET heartbeat_ms = \(dialect.nowMilliseconds), keks = ? WHERE id = ? AND instance = ?", keks.joined(separator: " "), hostID,
            instance) > 0
    }

    /// Records the KEKs a host holds (its current one first).
    public func setHostKEKs(hostID: String, keks: [String]) throws {
        try execute("UPDATE hosts SET keks = ? WHERE id = ?", keks.joined(separator: " "), hostID)
    }

    /// Every host, by id, with its live sandboxes.
    public func hosts() throws -> [HostRecord] {
        try rows(
            """
            SELECT h.id, h.state, h.max_sandboxes, h.lease_ms, h.started_at, h.keks, \(dialect.nowMilliseconds) - h.heartbeat_ms AS age,
            (SELECT COUNT(*) FROM sandboxes s WHERE s.host = h.id AND s.state != 'stopped') AS live
            FROM hosts h ORDER BY h.id
            """
        ).map {
            HostRecord(
                id: $0["id"], state: $0["state"], maxSandboxes: $0["max_sandboxes"], startedAt: $0["started_at"],
                heartbeatAgeMilliseconds: $0["age"], leaseMilliseconds: $0["lease_ms"], liveSandboxes: $0["live"],
                keks: ($0["keks"] as String).split(separator: " ").map(String.init))
        }
    }

    /// Removes a host that is down (no heartbeat for its own lease) and runs nothing, in one conditional statement (a
    /// heartbeat arriving meanwhile keeps it).
    /// - Throws: `KeyholdError.notFound` for an unknown id, `.conflict` while the host is alive or still has sandboxes.
    public func forgetHost(id: String) throws {
        let removed = try execute(
            """
            DELETE FROM hosts WHERE id = ? AND \(dialect.nowMilliseconds) - heartbeat_ms >= lease_ms
            AND NOT EXISTS (SELECT 1 FROM sandboxes s WHERE s.host = hosts.id AND s.state != 'stopped')
            """, id)
        if removed == 1 { return }
        guard let host = try hosts().first(where: { $0.id == id }) else {
            throw KeyholdError.notFound("no host named '\(id.prefix(63))': see `keyhold host list`")
        }
        if !host.isDown {
            throw KeyholdError.conflict("host '\(id)' is alive (heartbeat \(host.heartbeatAgeMilliseconds) ms ago): stop its daemon first")
        }
        if host.liveSandboxes > 0 {
            throw KeyholdError.conflict(
                "host '\(id)' still has \(host.liveSandboxes) sandbox(es) on record: start its daemon again to stop them, or move its tenants")
        }
        throw KeyholdError.conflict("host '\(id)' changed while it was being forgotten: look at `keyhold host list` and retry")
    }

    /// How many sandboxes not stopped run on `host`.
    public func liveSandboxCount(host: String) throws -> Int {
        try value("SELECT COUNT(*) FROM sandboxes WHERE host = ? AND state != 'stopped'", host) ?? 0
    }

    /// Holds the tenant's row until the transaction ends, so that hosts acting on one tenant at once (a start here,
    /// a start or a delete there) take turns. SQLite's writes already do.
    public func lockTenant(id: Int64) throws {
        if dialect == .postgres { _ = try rows("SELECT id FROM tenants WHERE id = ? FOR UPDATE", id) }
    }
}
