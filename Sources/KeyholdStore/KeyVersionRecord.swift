import Foundation
public import KeyholdCore
public import KeyholdVault

/// One version of a tenant's provider key, sealed.
public struct KeyVersionRecord: Sendable, Equatable {
    public var id: Int64
    public var tenantID: Int64
    public var provider: Provider
    public var version: Int
    /// `active`, `retired`, `revoked` or `failed`.
    public var state: KeyState
    public var sealed: SealedKey
    public var baseURL: String?
    public var createdAt: String
    /// The provider's verdict at the last check; nil until first checked.
    public var health: KeyHealth?
    public var healthDetail: String?
    public var validatedAt: String?

    init(row: StoreRow) {
        id = row["id"]
        tenantID = row["tenant_id"]
        provider = Provider(rawValue: row["provider"]) ?? .openaiCompatible
        version = row["version"]
        state = KeyState(rawValue: row["state"]) ?? .revoked  // never injected
        sealed = SealedKey(
            ciphertext: [UInt8](row["ciphertext"] as Data), nonce: [UInt8](row["nonce"] as Data), tag: [UInt8](row["tag"] as Data),
            wrappedDEK: (row["wrapped_dek"] as Data?).map { [UInt8]($0) }, kekID: row["kek_id"], fingerprint: row["fingerprint"]
        )
        baseURL = row["base_url"]
        createdAt = row["created_at"]
        health = (row["health"] as String?).flatMap(KeyHealth.init(rawValue:))
        healthDetail = row["health_detail"]
        validatedAt = row["validated_at"]
    }

    /// What the ciphertext is bound to.
    public var binding: KeyBinding { KeyBinding(tenantID: tenantID, provider: provider.rawValue, version: version) }

}

extension StoreTransaction {
    /// The next version number for a tenant's provider key (1 for the first).
    public func nextKeyVersion(tenantID: Int64, provider: Provider) throws -> Int {
        let current: Int? = try value(
            "SELECT MAX(version) FROM key_versions WHERE tenant_id = ? AND provider = ?", tenantID, provider.rawValue
        )
        return (current ?? 0) + 1
    }

    /// Inserts a sealed key version, `active` unless a rotation stages it as `pending`.
    public func insertKeyVersion(
        tenantID: Int64, provider: Provider, version: Int, sealed: SealedKey, baseURL: String?, state: KeyState = .active
    ) throws -> KeyVersionRecord {
        let inserted = try row(
            """
            INSERT INTO key_versions (tenant_id, provider, version, state, ciphertext, nonce, tag, wrapped_dek, kek_id, fingerprint, base_url, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *
            """,
            tenantID, provider.rawValue, version, state.rawValue, Data(sealed.ciphertext), Data(sealed.nonce), Data(sealed.tag),
            sealed.wrappedDEK.map { Data($0) },
            sealed.kekID, sealed.fingerprint, baseURL, Timestamp.now()
        )
        guard let inserted else { throw StoreError("the database returned no row for a new key version") }
        return KeyVersionRecord(row: inserted)
    }

    /// All key versions of a tenant, newest first per provider.
    public func keyVersions(tenantID: Int64, provider: Provider? = nil) throws -> [KeyVersionRecord] {
        if let provider {
            return try rows(
                "SELECT * FROM key_versions WHERE tenant_id = ? AND provider = ? ORDER BY version DESC",
                tenantID, provider.rawValue
            ).map(KeyVersionRecord.init(row:))
        }
        return try rows(
            "SELECT * FROM key_versions WHERE tenant_id = ? ORDER BY provider, version DESC", tenantID
        ).map(KeyVersionRecord.init(row:))
    }

    /// The newest active version of each provider's key for a tenant.
    public func activeKeys(tenantID: Int64) throws -> [KeyVersionRecord] {
        var newest: [Provider: KeyVersionRecord] = [:]
        for key in try keyVersions(tenantID: tenantID) where key.state == .active && newest[key.provider] == nil {
            newest[key.provider] = key
        }
        return newest.values.sorted { $0.provider.rawValue < $1.provider.rawValue }
    }

    /// Marks older active versions of a provider's key as retired, once a newer one is in place.
    public func retireKeyVersions(tenantID: Int64, provider: Provider, olderThan version: Int) throws -> [Int] {
        let versions: [Int] = try rows(
            "SELECT version FROM key_versions WHERE tenant_id = ? AND provider = ? AND state = 'active' AND version < ?",
            tenantID, provider.rawValue, version
        ).map { $0["version"] }
        try execute(
            "UPDATE key_versions SET state = 'retired', retired_at = ? WHERE tenant_id = ? AND provider = ? AND state = 'active' AND version < ?",
            Timestamp.now(), tenantID, provider.rawValue, version
        )
        return versions
    }

    /// Revokes a key version: marks it revoked and deletes its wrapped data key, so no copy of the database can decrypt it.
    public func revokeKeyVersion(_ id: Int64) throws {
        try execute(
            "UPDATE key_versions SET state = 'revoked', wrapped_dek = NULL, ciphertext = \(dialect.zeros(sameLengthAs: "ciphertext")), revoked_at = ? WHERE id = ?",
            Timestamp.now(), id
        )
    }
}
