import Foundation
public import KeyholdCore

/// An active key version due for a check with its provider, with what the check needs to schedule and report it.
public struct KeyHealthCandidate: Sendable, Equatable {
    public var keyID: Int64
    public var tenantID: Int64
    public var tenantName: String
    public var plan: String
    public var provider: Provider
    public var version: Int
    public var health: KeyHealth?
    /// When it was last checked, or created if never.
    public var checkedOrCreatedAt: String
    /// Whether it was never checked (its first check is spread over its period, so that keys stored together are
    /// not all checked together).
    public var neverChecked: Bool
    /// The host the tenant is placed on, if any (on a shared store each host checks its own tenants' keys).
    public var host: String?
}

extension StoreTransaction {
    /// Records a check's verdict on a key version.
    /// - Returns: the health it had before (nil if never checked), or nil when the version is gone.
    @discardableResult
    public func recordKeyHealth(keyID: Int64, health: KeyHealth, detail: String, at time: String) throws -> (previous: KeyHealth?, found: Bool) {
        guard let row = try row("SELECT health FROM key_versions WHERE id = ?", keyID) else { return (nil, false) }
        let previous = (row["health"] as String?).flatMap(KeyHealth.init(rawValue:))
        try execute(
            "UPDATE key_versions SET health = ?, health_detail = ?, validated_at = ? WHERE id = ?", health.rawValue, String(detail.prefix(300)),
            time, keyID)
        return (previous, true)
    }

    /// Every active key version of an active tenant never checked, or last checked before `before`; oldest first.
    public func keysForRevalidation(checkedBefore before: String, limit: Int) throws -> [KeyHealthCandidate] {
        try rows(
            """
            SELECT key_versions.id, key_versions.tenant_id, key_versions.provider, key_versions.version, key_versions.health,
                   COALESCE(key_versions.validated_at, key_versions.created_at) AS checked, key_versions.validated_at IS NULL AS never,
                   tenants.name, tenants.plan, placements.host
            FROM key_versions JOIN tenants ON tenants.id = key_versions.tenant_id
            LEFT JOIN placements ON placements.tenant_id = key_versions.tenant_id
            WHERE key_versions.state = 'active' AND tenants.state = 'active'
              AND (key_versions.validated_at IS NULL OR key_versions.validated_at < ?)
            ORDER BY checked LIMIT \(max(0, limit))
            """, before
        ).compactMap { row in
            guard let provider = Provider(rawValue: row["provider"]) else { return nil }
            return KeyHealthCandidate(
                keyID: row["id"], tenantID: row["tenant_id"], tenantName: row["name"], plan: row["plan"], provider: provider, version: row["version"],
                health: (row["health"] as String?).flatMap(KeyHealth.init(rawValue:)), checkedOrCreatedAt: row["checked"], neverChecked: row["never"],
                host: row["host"])
        }
    }

    /// Sets (or with nil clears) the provider whose invalid key put the tenant's agent on its managed fallback.
    /// - Returns: whether the value changed.
    @discardableResult
    public func setFallbackProvider(tenantID: Int64, provider: String?) throws -> Bool {
        let current: String? = try value("SELECT fallback_provider FROM tenants WHERE id = ?", tenantID)
        guard current != provider else { return false }
        try execute("UPDATE tenants SET fallback_provider = ?, updated_at = ? WHERE id = ?", provider, Timestamp.now(), tenantID)
        return true
    }
}

extension StoreTransaction {
    /// The key version with this id, if it still exists.
    public func keyVersion(id: Int64) throws -> KeyVersionRecord? {
        try row("SELECT * FROM key_versions WHERE id = ?", id).map(KeyVersionRecord.init(row:))
    }
}
