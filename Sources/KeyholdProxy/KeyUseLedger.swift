import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdVault
import Logging
import Synchronization

/// Counts brokered uses of tenants' keys per sandbox, key version and destination, between two audit batches: each
/// batch writes one `key.use` record per sandbox and key with its counts, so the audit says when a key was used
/// without a record per request.
final class KeyUseLedger: Sendable {
    struct Use: Hashable, Sendable {
        /// The tenant's id binds the record (a name may be taken again by a later tenant).
        var tenantID: Int64
        var tenantName: String
        var sandboxID: Int64?
        /// A provider's name, or `secret:NAME` for a generic secret.
        var label: String
        var keyVersion: Int
        var fingerprint: String
        var destination: String
    }

    struct Tally: Sendable {
        var count: Int
        var first: String
        var last: String
    }

    private let tallies = Mutex<[Use: Tally]>([:])

    /// Counts one request sent with the key.
    func count(caller: ProxyCaller, key: KeyVersionRecord, destination: String) {
        count(
            Use(
                tenantID: caller.tenantID, tenantName: caller.tenantName, sandboxID: caller.sandboxID, label: key.provider.rawValue,
                keyVersion: key.version,
                fingerprint: key.sealed.fingerprint, destination: destination))
    }

    /// Counts one use.
    func count(_ use: Use) {
        let now = Timestamp.now()
        tallies.withLock { all in
            if var tally = all[use] {
                tally.count += 1
                tally.last = now
                all[use] = tally
            } else {
                all[use] = Tally(count: 1, first: now, last: now)
            }
        }
    }

    /// Takes every tally counted since the last batch.
    func drain() -> [(Use, Tally)] {
        tallies.withLock { all in
            defer { all.removeAll() }
            return all.map { ($0.key, $0.value) }
        }
    }

    /// Puts tallies back (their batch could not be written): they go in the next one.
    func restore(_ batch: [(Use, Tally)]) {
        tallies.withLock { all in
            for (use, tally) in batch {
                if let newer = all[use] {
                    all[use] = Tally(count: tally.count + newer.count, first: tally.first, last: newer.last)
                } else {
                    all[use] = tally
                }
            }
        }
    }
}

extension MeteringProxy {
    /// Counts one request the egress gateway sent with a tenant's generic secret (`secret:NAME`), for the next
    /// `key.use` batch.
    public func countSecretUse(
        tenantID: Int64, tenantName: String, sandboxID: Int64, label: String, version: Int, fingerprint: String, destination: String
    ) {
        keyUses.count(
            KeyUseLedger.Use(
                tenantID: tenantID, tenantName: tenantName, sandboxID: sandboxID, label: label, keyVersion: version, fingerprint: fingerprint,
                destination: destination))
    }

    /// Writes one `key.use` record per sandbox and key version used since the last batch, with the count for each
    /// destination; on failure the counts wait for the next batch.
    func auditKeyUses() async {
        let batch = keyUses.drain()
        guard !batch.isEmpty else { return }
        struct Group: Hashable {
            var tenantID: Int64
            var tenantName: String
            var sandboxID: Int64?
            var label: String
            var keyVersion: Int
            var fingerprint: String
        }
        let groups = Dictionary(grouping: batch) {
            Group(
                tenantID: $0.0.tenantID, tenantName: $0.0.tenantName, sandboxID: $0.0.sandboxID, label: $0.0.label, keyVersion: $0.0.keyVersion,
                fingerprint: $0.0.fingerprint)
        }
        do {
            try await store.write { tx in
                for (group, uses) in groups.sorted(by: { ($0.key.tenantName, $0.key.keyVersion) < ($1.key.tenantName, $1.key.keyVersion) }) {
                    let unit = try group.sandboxID.flatMap { try tx.sandbox(id: $0)?.unit }
                    var details = [
                        "count": String(uses.reduce(0) { $0 + $1.1.count }),
                        "first_use": uses.map(\.1.first).min() ?? "", "last_use": uses.map(\.1.last).max() ?? "", "delivery": "brokered",
                        AuditEvent.tenantIDDetail: String(group.tenantID),
                    ]
                    for (use, tally) in uses { details["destination." + use.destination] = String(tally.count) }
                    try tx.appendAudit(
                        AuditEvent(
                            actor: "keyhold-broker", action: .keyUse, tenant: group.tenantName, provider: group.label,
                            keyVersion: group.keyVersion, fingerprint: group.fingerprint, unit: unit, details: details))
                }
            }
        } catch {
            keyUses.restore(batch)
            logger.warning("key.use records wait for the next batch: the audit log cannot be written (\(error))")
        }
    }
}
