public import GRDB
import KeyholdCore

/// A key rotation as recorded step by step, so that a daemon killed at any step can finish or undo it.
public struct RotationRecord: Sendable, Equatable {
    public var id: Int64
    public var tenantID: Int64
    public var provider: String
    public var fromVersion: Int?
    public var toVersion: Int?
    /// prepared → starting-new → new-ready → stopping-old → finished.
    public var step: String
    /// running, done, failed.
    public var state: RotationState
    public var oldUnits: [String]
    public var newUnits: [String]

    public init(row: Row) {
        id = row["id"]
        tenantID = row["tenant_id"]
        provider = row["provider"]
        fromVersion = row["from_version"]
        toVersion = row["to_version"]
        step = row["step"]
        state = RotationState(rawValue: row["state"]) ?? .failed
        oldUnits = (row["old_units"] as String).split(separator: " ").map(String.init)
        newUnits = (row["new_units"] as String).split(separator: " ").map(String.init)
    }
}

extension Store {
    /// Records a new rotation; a second running rotation of the same tenant is refused.
    public static func insertRotation(
        tenantID: Int64, tenantName: String, provider: String, from: Int?, to: Int?, in db: Database
    ) throws
        -> RotationRecord
    {
        if let running = try Row.fetchOne(
            db, sql: "SELECT started_at FROM rotations WHERE tenant_id = ? AND state = 'running'", arguments: [tenantID])
        {
            throw KeyholdError.conflict(
                "a rotation of tenant '\(tenantName)' is already running (started \(running["started_at"] as String)): wait for it to finish, then retry"
            )
        }
        let now = Timestamp.now()
        try db.execute(
            sql: """
                INSERT INTO rotations (tenant_id, provider, from_version, to_version, step, state, started_at, updated_at)
                VALUES (?, ?, ?, ?, 'prepared', 'running', ?, ?)
                """,
            arguments: [tenantID, provider, from, to, now, now]
        )
        return try rotation(id: db.lastInsertedRowID, in: db)!
    }

    public static func rotation(id: Int64, in db: Database) throws -> RotationRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM rotations WHERE id = ?", arguments: [id]).map(RotationRecord.init(row:))
    }

    public static func runningRotations(in db: Database) throws -> [RotationRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM rotations WHERE state = 'running' ORDER BY id").map(RotationRecord.init(row:))
    }

    /// Records the step a rotation is about to take (and the units it involves).
    public static func updateRotation(
        _ id: Int64, step: String, state: RotationState = .running, oldUnits: [String]? = nil, newUnits: [String]? = nil, error: String? = nil,
        in db: Database
    ) throws {
        try db.execute(
            sql: """
                UPDATE rotations SET step = ?, state = ?, old_units = COALESCE(?, old_units), new_units = COALESCE(?, new_units),
                error = COALESCE(?, error), updated_at = ? WHERE id = ?
                """,
            arguments: [step, state.rawValue, oldUnits?.joined(separator: " "), newUnits?.joined(separator: " "), error, Timestamp.now(), id]
        )
    }

    public static func setKeyVersionState(_ id: Int64, state: KeyState, in db: Database) throws {
        let column = state == .retired ? ", retired_at = ?" : ""
        var arguments: [any DatabaseValueConvertible] = [state.rawValue]
        if state == .retired { arguments.append(Timestamp.now()) }
        arguments.append(id)
        try db.execute(sql: "UPDATE key_versions SET state = ?\(column) WHERE id = ?", arguments: StatementArguments(arguments))
    }
}
