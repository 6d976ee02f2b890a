import Foundation

/// What the metrics endpoint reads at each scrape.
public struct StoreGauges: Sendable, Equatable {
    /// This host's sandboxes by recorded state (stopped ones left out).
    public var sandboxes: [String: Int]
    /// Active keys by health (`unchecked` before the first check).
    public var keys: [String: Int]
    /// The audit log's length.
    public var auditRecords: Int64
}

extension StoreTransaction {
    /// Counts for the metrics endpoint: one short read.
    public func gauges(host: String?) throws -> StoreGauges {
        var sandboxes: [String: Int] = [:]
        for row in try rows(
            "SELECT state, COUNT(*) AS n FROM sandboxes WHERE state != 'stopped' AND (host = ? OR host IS NULL) GROUP BY state", host ?? "")
        {
            sandboxes[row["state"]] = row["n"]
        }
        var keys: [String: Int] = [:]
        for row in try rows("SELECT COALESCE(health, 'unchecked') AS health, COUNT(*) AS n FROM key_versions WHERE state = 'active' GROUP BY 1") {
            keys[row["health"]] = row["n"]
        }
        return StoreGauges(sandboxes: sandboxes, keys: keys, auditRecords: try auditHead().seq)
    }
}
