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
    /// Sandboxes not stopped that run there.
    public var liveSandboxes: Int
}

extension StoreTransaction {
    /// Registers this daemon as host `id`, or takes the row over from an earlier daemon of the same host whose
    /// heartbeat is older than `lease`, or that `isGone` says no longer exists (given its instance).
    /// - Throws: `KeyholdError.conflict` when another daemon with the same host id is alive.
    public func registerHost(
        id: String, instance: String, maxSandboxes: Int, leaseMilliseconds: Int64, isGone: (String) -> Bool
    ) throws {
        let now = dialect.nowMilliseconds
        if let row = try row("SELECT instance, \(now) - heartbeat_ms AS age FROM hosts WHERE id = ?", id) {
            let age: Int64 = row["age"]
            let previous: String = row["instance"]
            if previous != instance && age < leaseMilliseconds && !isGone(previous) {
                throw KeyholdError.conflict(
                    "another keyhold daemon runs as host '\(id)' (its last heartbeat was \(age) ms ago): give this one another --host-id, or stop that one"
                )
            }
            try execute(
                "UPDATE hosts SET instance = ?, max_sandboxes = ?, started_at = ?, heartbeat_ms = \(now) WHERE id = ?", instance, maxSandboxes,
                Timestamp.now(), id)
        } else {
            try execute(
                "INSERT INTO hosts (id, instance, state, max_sandboxes, started_at, heartbeat_ms) VALUES (?, ?, 'active', ?, ?, \(now))", id,
                instance, maxSandboxes, Timestamp.now())
        }
    }

    /// Records that this daemon is alive.
    /// - Returns: false when the row is no longer this daemon's (forgotten, or taken over after a missed lease).
    public func heartbeat(hostID: String, instance: String) throws -> Bool {
        try execute("UPDATE hosts SET heartbeat_ms = \(dialect.nowMilliseconds) WHERE id = ? AND instance = ?", hostID, instance) > 0
    }

    /// Every host, by id, with its live sandboxes.
    public func hosts() throws -> [HostRecord] {
        try rows(
            """
            SELECT h.id, h.state, h.max_sandboxes, h.started_at, \(dialect.nowMilliseconds) - h.heartbeat_ms AS age,
            (SELECT COUNT(*) FROM sandboxes s WHERE s.host = h.id AND s.state != 'stopped') AS live
            FROM hosts h ORDER BY h.id
            """
        ).map {
            HostRecord(
                id: $0["id"], state: $0["state"], maxSandboxes: $0["max_sandboxes"], startedAt: $0["started_at"],
                heartbeatAgeMilliseconds: $0["age"], liveSandboxes: $0["live"])
        }
    }

    /// Removes a host that is down (no heartbeat for `lease`).
    /// - Throws: `KeyholdError.notFound` for an unknown id, `.conflict` while the host is alive or still has sandboxes.
    public func forgetHost(id: String, leaseMilliseconds: Int64) throws {
        guard let host = try hosts().first(where: { $0.id == id }) else {
            throw KeyholdError.notFound("no host named '\(id.prefix(63))': see `keyhold host list`")
        }
        if host.heartbeatAgeMilliseconds < leaseMilliseconds {
            throw KeyholdError.conflict("host '\(id)' is alive (heartbeat \(host.heartbeatAgeMilliseconds) ms ago): stop its daemon first")
        }
        if host.liveSandboxes > 0 {
            throw KeyholdError.conflict(
                "host '\(id)' still has \(host.liveSandboxes) sandbox(es) on record: start its daemon again to stop them, or move its tenants")
        }
        try execute("DELETE FROM hosts WHERE id = ?", id)
    }
}
