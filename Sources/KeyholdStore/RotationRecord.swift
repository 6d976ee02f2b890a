public import KeyholdCore

/// A key rotation as recorded step by step, so that a daemon killed at any step can finish or undo it.
public struct RotationRecord: Sendable, Equatable {
    public var id: Int64
    public var tenantID: Int64
    /// The provider whose key is rotated, or `proxy-token` for a managed tenant's proxy token.
    public var provider: String
    /// The provider whose key is rotated; nil for a proxy token.
    public var keyProvider: Provider? { Provider(rawValue: provider) }
    public var fromVersion: Int?
    public var toVersion: Int?
    /// prepared → starting-new → new-ready → stopping-old → finished.
    public var step: RotationStep
    /// running, done, failed.
    public var state: RotationState
    public var oldUnits: [String]
    public var newUnits: [String]

    init(row: StoreRow) {
        id = row["id"]
        tenantID = row["tenant_id"]
        provider = row["provider"]
        fromVersion = row["from_version"]
        toVersion = row["to_version"]
        step = RotationStep(rawValue: row["step"]) ?? .prepared
        state = RotationState(rawValue: row["state"]) ?? .failed
        oldUnits = (row["old_units"] as String).split(separator: " ").map(String.init)
        newUnits = (row["new_units"] as String).split(separator: " ").map(String.init)
    }
}

extension StoreTransaction {
    /// Records a new rotation; a second running rotation of the same tenant is refused.
    public func insertRotation(
        tenantID: Int64, tenantName: String, provider: String, from: Int?, to: Int?, host: String? = nil
    ) throws
        -> RotationRecord
    {
        if let running = try row("SELECT started_at FROM rotations WHERE tenant_id = ? AND state = 'running'", tenantID) {
            throw KeyholdError.conflict(
                "a rotation of tenant '\(tenantName)' is already running (started \(running["started_at"] as String)): wait for it to finish, then retry"
            )
        }
        let now = Timestamp.now()
        let id: Int64? = try value(
            """
            INSERT INTO rotations (tenant_id, provider, from_version, to_version, step, state, started_at, updated_at, host)
            VALUES (?, ?, ?, ?, 'prepared', 'running', ?, ?, ?) RETURNING id
            """,
            tenantID, provider, from, to, now, now, host
        )
        guard let id, let rotation = try rotation(id: id) else { throw StoreError("the database returned no row for a new rotation") }
        return rotation
    }

    public func rotation(id: Int64) throws -> RotationRecord? {
        try row("SELECT * FROM rotations WHERE id = ?", id).map(RotationRecord.init(row:))
    }

    /// The rotations still running that `host` drives (with those from before hosts were recorded).
    public func runningRotations(host: String? = nil) throws -> [RotationRecord] {
        guard let host else { return try rows("SELECT * FROM rotations WHERE state = 'running' ORDER BY id").map(RotationRecord.init(row:)) }
        return try rows("SELECT * FROM rotations WHERE state = 'running' AND (host = ? OR host IS NULL) ORDER BY id", host)
            .map(RotationRecord.init(row:))
    }

    /// Records the step a rotation is about to take (and the units it involves).
    public func updateRotation(
        _ id: Int64, step: RotationStep, state: RotationState = .running, oldUnits: [String]? = nil, newUnits: [String]? = nil, error: String? = nil,
    ) throws {
        try execute(
            """
            UPDATE rotations SET step = ?, state = ?, old_units = COALESCE(?, old_units), new_units = COALESCE(?, new_units),
            error = COALESCE(?, error), updated_at = ? WHERE id = ?
            """,
            step.rawValue, state.rawValue, oldUnits?.joined(separator: " "), newUnits?.joined(separator: " "), error, Timestamp.now(), id
        )
    }

    public func setKeyVersionState(_ id: Int64, state: KeyState) throws {
        let column = state == .retired ? ", retired_at = ?" : ""
        var arguments: [StoreValue] = [.text(state.rawValue)]
        if state == .retired { arguments.append(.text(Timestamp.now())) }
        arguments.append(.integer(id))
        _ = try connection.execute("UPDATE key_versions SET state = ?\(column) WHERE id = ?", arguments)
    }
}
