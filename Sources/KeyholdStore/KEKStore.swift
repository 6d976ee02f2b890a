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
        var updates: [StoreValue] = []
        updates.reserveCapacity(batch.count * 3)
        for row in batch {
            let binding = KeyBinding(tenantID: row["tenant_id"], provider: row["provider"], version: row["version"])
            let sealed = SealedKey(
                ciphertext: [], nonce: [], tag: [], wrappedDEK: [UInt8](row["wrapped_dek"] as Data), kekID: row["kek_id"], fingerprint: ""
            )
            let rewrapped = try rewrap(binding, sealed)
            guard let wrapped = rewrapped.wrappedDEK else { throw StoreError("a rewrapped data key came back empty: nothing was changed") }
            updates += [.integer(row["id"]), .blob(Data(wrapped)), .text(rewrapped.kekID)]
        }
        // One statement for the batch: a round trip per key would dominate on a database across the network.
        for chunk in stride(from: 0, to: updates.count, by: 3 * 500) {
            let part = Array(updates[chunk..<min(chunk + 3 * 500, updates.count)])
            let values = Array(repeating: "(CAST(? AS BIGINT), CAST(? AS \(dialect.blobType)), CAST(? AS TEXT))", count: part.count / 3)
            _ = try connection.execute(
                """
                WITH rewrapped (id, wrapped, kek) AS (VALUES \(values.joined(separator: ", ")))
                UPDATE key_versions SET wrapped_dek = rewrapped.wrapped, kek_id = rewrapped.kek FROM rewrapped WHERE key_versions.id = rewrapped.id
                """, part)
        }
        return batch.count
    }
}
