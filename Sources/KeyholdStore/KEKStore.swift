import Foundation
public import KeyholdVault

extension StoreTransaction {
    /// How many data keys each KEK wraps (revoked keys, whose data keys are deleted, count for none).
    public func wrappedKeyCounts() throws -> [(kekID: String, count: Int)] {
        var counts: [String: Int] = [:]
        for (table, _) in Self.sealedTables {
            for row in try rows("SELECT kek_id, COUNT(*) AS n FROM \(table) WHERE wrapped_dek IS NOT NULL GROUP BY kek_id") {
                counts[row["kek_id"], default: 0] += row["n"] as Int
            }
        }
        return counts.sorted { $0.key < $1.key }.map { (kekID: $0.key, count: $0.value) }
    }

    /// How many data keys are wrapped by a KEK other than `kekID`.
    public func keysNotWrapped(by kekID: String) throws -> Int {
        var total = 0
        for (table, _) in Self.sealedTables {
            total += try value("SELECT COUNT(*) FROM \(table) WHERE wrapped_dek IS NOT NULL AND kek_id != ?", kekID) ?? 0
        }
        return total
    }

    /// Every table of sealed values, and the column its binding's label is in (they share the other sealed columns).
    static let sealedTables = [("key_versions", "provider"), ("secret_versions", "label"), ("sandbox_authorities", "label")]

    /// Rewraps at most `limit` data keys not wrapped by `kekID`, with `rewrap` (given each key's binding and its
    /// wrapped data key; the ciphertext itself never changes).
    /// - Returns: how many were rewrapped (0 when none is left).
    public func rewrapBatch(notWrappedBy kekID: String, limit: Int, rewrap: (KeyBinding, SealedKey) throws -> SealedKey) throws -> Int {
        for (table, label) in Self.sealedTables {
            let done = try rewrapBatch(table: table, label: label, notWrappedBy: kekID, limit: limit, rewrap: rewrap)
            if done > 0 { return done }
        }
        return 0
    }

    private func rewrapBatch(
        table: String, label: String, notWrappedBy kekID: String, limit: Int, rewrap: (KeyBinding, SealedKey) throws -> SealedKey
    ) throws -> Int {
        let batch = try rows(
            "SELECT id, tenant_id, \(label) AS label, version, wrapped_dek, kek_id FROM \(table) WHERE wrapped_dek IS NOT NULL AND kek_id != ? LIMIT ?",
            kekID, limit
        )
        var updates: [StoreValue] = []
        updates.reserveCapacity(batch.count * 3)
        for row in batch {
            let binding = KeyBinding(tenantID: row["tenant_id"], provider: row["label"], version: row["version"])
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
                UPDATE \(table) SET wrapped_dek = rewrapped.wrapped, kek_id = rewrapped.kek FROM rewrapped WHERE \(table).id = rewrapped.id
                """, part)
        }
        return batch.count
    }
}
