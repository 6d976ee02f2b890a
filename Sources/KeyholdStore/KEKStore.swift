import Foundation
public import KeyholdVault

extension StoreTransaction {
    /// How many data keys each KEK wraps (revoked keys, whose data keys are deleted, count for none).
    public func wrappedKeyCounts() throws -> [(kekID: String, count: Int)] {
        try rows("SELECT kek_id, COUNT(*) AS n FROM key_versions WHERE wrapped_dek IS NOT NULL GROUP BY kek_id ORDER BY kek_id")
            .map { (kekID: $0["kek_id"], count: $0["n"]) }
    }

    /// How many data keys are wrapped by a KEK other than `kekID`.
    public func keysNotWrapped(by kekID: String) throws -> Int {
        try value("SELECT COUNT(*) FROM key_versions WHERE wrapped_dek IS NOT NULL AND kek_id != ?", kekID) ?? 0
    }

    /// Rewraps at most `limit` data keys not wrapped by `kekID`, with `rewrap` (given each key's binding and its
    /// wrapped data key; the ciphertext itself never changes).
    /// - Returns: how many were rewrapped (0 when none is left).
    public func rewrapBatch(notWrappedBy kekID: String, limit: Int, rewrap: (KeyBinding, SealedKey) throws -> SealedKey) throws -> Int {
        let batch = try rows(
            "SELECT id, tenant_id, provider, version, wrapped_dek, kek_id FROM key_versions WHERE wrapped_dek IS NOT NULL AND kek_id != ? LIMIT ?",
            kekID, limit
        )
        for row in batch {
            let binding = KeyBinding(tenantID: row["tenant_id"], provider: row["provider"], version: row["version"])
            let sealed = SealedKey(
                ciphertext: [], nonce: [], tag: [], wrappedDEK: [UInt8](row["wrapped_dek"] as Data), kekID: row["kek_id"], fingerprint: ""
            )
            let rewrapped = try rewrap(binding, sealed)
            guard let wrapped = rewrapped.wrappedDEK else { throw StoreError("a rewrapped data key came back empty: nothing was changed") }
            try execute("UPDATE key_versions SET wrapped_dek = ?, kek_id = ? WHERE id = ?", Data(wrapped), rewrapped.kekID, row["id"] as Int64)
        }
        return batch.count
    }
}
