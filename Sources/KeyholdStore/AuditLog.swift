import Crypto
import Foundation
public import KeyholdCore

/// The append-only, hash-chained audit log.
///
/// Records are appended inside the transaction of the action they describe: if the record cannot
/// be written and synced, the action is rolled back with it (fail-closed).
public enum AuditLog {
    /// SHA-256 over the record's canonical content, hex.
    public static func hash(of record: AuditRecord) -> String {
        SHA256.hash(data: record.canonicalContent).map { String(format: "%02x", $0) }.joined()
    }

    static func record(from row: StoreRow) -> AuditRecord {
        let detailsText: String = row["details"]
        let details = (try? JSONDecoder().decode([String: String].self, from: Data(detailsText.utf8))) ?? ["(unreadable details)": detailsText]
        let event = AuditEvent(
            recordedBy: row["actor"], action: row["action"], tenant: row["tenant"], provider: row["provider"], keyVersion: row["key_version"],
            fingerprint: row["fingerprint"], outcome: row["outcome"], unit: row["unit"], invocationID: row["invocation_id"], details: details
        )
        return AuditRecord(seq: row["seq"], time: row["time"], event: event, prevHash: row["prev_hash"], hash: row["hash"])
    }
}

extension StoreTransaction {
    /// A lock id of Keyhold's own for audit appends on PostgreSQL.
    static let auditLock: Int64 = 0x6b65_7968_6f6c_6402

    /// Appends a record for `event` inside this transaction.
    /// - Returns: the record as written.
    @discardableResult
    public func appendAudit(_ event: AuditEvent) throws -> AuditRecord {
        var event = event
        if let host, event.details["host"] == nil { event.details["host"] = host }
        // The record is bound to its tenant's id (hashed with the details), so that its history follows the tenant,
        // not a name a later tenant may take. A caller that knows the id says so (a deletion, a batch written later).
        if let tenant = event.tenant, event.details[AuditEvent.tenantIDDetail] == nil,
            let id: Int64 = try row("SELECT id FROM tenants WHERE name = ?", tenant)?["id"]
        {
            event.details[AuditEvent.tenantIDDetail] = String(id)
        }
        let tenantID = event.details[AuditEvent.tenantIDDetail].flatMap { Int64($0) }
        if dialect == .postgres {
            // One chain for the fleet: appends from every host take this lock in turn (held to the commit); the head
            // is then read with a fresh snapshot (READ COMMITTED), so it includes the previous holder's append.
            try execute("SELECT pg_advisory_xact_lock(?)", Self.auditLock)
        }
        let last = try row("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        let seq: Int64 = (last?["seq"] as Int64? ?? 0) + 1
        let prevHash: String = last?["hash"] ?? AuditRecord.genesisHash
        var record = AuditRecord(seq: seq, time: Timestamp.now(), event: event, prevHash: prevHash, hash: "")
        record.hash = AuditLog.hash(of: record)
        let details = String(decoding: try JSONEncoder.sorted.encode(event.details), as: UTF8.self)
        try execute(
            """
            INSERT INTO audit (seq, time, actor, action, tenant, tenant_id, provider, key_version, fingerprint, outcome, unit, invocation_id,
                details, prev_hash, hash)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            seq, record.time, event.actor, event.action, event.tenant, tenantID, event.provider, event.keyVersion, event.fingerprint,
            event.outcome, event.unit, event.invocationID, details, prevHash, record.hash
        )
        return record
    }

    /// Reads records in sequence order, optionally filtered.
    /// - Parameter tenantID: one tenant's records, by its id: a tenant created again under a deleted one's name does
    ///   not see its predecessor's.
    public func auditRecords(
        tenantID: Int64? = nil, action: String? = nil, since: String? = nil, afterSeq: Int64 = 0, limit: Int? = nil, newest: Bool = false
    ) throws -> [AuditRecord] {
        var conditions = ["seq > ?"]
        var arguments: [any StoreArgument] = [afterSeq]
        if let tenantID {
            conditions.append("tenant_id = ?")
            arguments.append(tenantID)
        }
        if let action {
            if action.hasSuffix(".*") || !action.contains(".") {
                conditions.append("action LIKE ?")
                arguments.append(action.replacingOccurrences(of: ".*", with: "") + ".%")
            } else {
                conditions.append("action = ?")
                arguments.append(action)
            }
        }
        if let since {
            conditions.append("time >= ?")
            arguments.append(since)
        }
        var sql = "SELECT * FROM audit WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq"
        if let limit, limit >= 0 {
            // The first `limit` records after `afterSeq`, or the newest `limit` ones; in sequence order either way.
            sql =
                newest
                ? "SELECT * FROM (SELECT * FROM audit WHERE \(conditions.joined(separator: " AND ")) ORDER BY seq DESC LIMIT \(limit)) AS newest ORDER BY seq"
                : sql + " LIMIT \(limit)"
        }
        return try connection.fetchAll(sql, arguments.map(\.storeValue)).map(AuditLog.record(from:))
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
