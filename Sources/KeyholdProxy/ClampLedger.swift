import Foundation
import KeyholdCore
import KeyholdStore
import Logging
import Synchronization

/// Counts the requests whose output maximum a tenant's caps lowered (clamped), between two audit batches: each batch
/// writes one `usage.clamp` record per tenant, so the audit says when caps began to bite without a record per request.
final class ClampLedger: Sendable {
    struct Tally: Sendable {
        var tenantName: String
        var count: Int
        /// The largest maximum asked for, and the smallest it was lowered to.
        var largestAsked: Int
        var smallestClamp: Int
        /// When the first and last were counted (formatted only when the batch is written: a clamp costs no formatting).
        var first: Date
        var last: Date
    }

    /// By tenant id: the records are bound to the tenant, not to a name a later tenant may take.
    private let tallies = Mutex<[Int64: Tally]>([:])

    /// Counts one clamped request of a tenant.
    func count(tenantID: Int64, tenantName: String, asked: Int, clampedTo: Int) {
        let now = Date()
        tallies.withLock { all in
            if var tally = all[tenantID] {
                tally.count += 1
                tally.largestAsked = max(tally.largestAsked, asked)
                tally.smallestClamp = min(tally.smallestClamp, clampedTo)
                tally.last = now
                all[tenantID] = tally
            } else {
                all[tenantID] = Tally(tenantName: tenantName, count: 1, largestAsked: asked, smallestClamp: clampedTo, first: now, last: now)
            }
        }
    }

    /// Takes every tally counted since the last batch.
    func drain() -> [Int64: Tally] {
        tallies.withLock { all in
            defer { all.removeAll() }
            return all
        }
    }

    /// Puts tallies back (their batch could not be written): they go in the next one.
    func restore(_ batch: [Int64: Tally]) {
        tallies.withLock { all in
            for (tenant, tally) in batch {
                guard let newer = all[tenant] else {
                    all[tenant] = tally
                    continue
                }
                all[tenant] = Tally(
                    tenantName: tally.tenantName, count: tally.count + newer.count, largestAsked: max(tally.largestAsked, newer.largestAsked),
                    smallestClamp: min(tally.smallestClamp, newer.smallestClamp), first: tally.first, last: newer.last)
            }
        }
    }
}

extension MeteringProxy {
    /// Writes one `usage.clamp` record per tenant whose requests were clamped since the last batch; on failure the
    /// counts wait for the next batch.
    func auditClamps() async {
        let batch = clamps.drain()
        guard !batch.isEmpty else { return }
        do {
            try await store.write { tx in
                for (tenantID, tally) in batch.sorted(by: { $0.key < $1.key }) {
                    try tx.appendAudit(
                        AuditEvent(
                            actor: "keyhold-proxy", action: .usageClamp, tenant: tally.tenantName, outcome: .clamped,
                            details: [
                                "count": String(tally.count), "largest_asked": String(tally.largestAsked),
                                "smallest_clamp": String(tally.smallestClamp), "first": Timestamp.format(tally.first),
                                "last": Timestamp.format(tally.last), AuditEvent.tenantIDDetail: String(tenantID),
                            ]))
                }
            }
        } catch {
            clamps.restore(batch)
            logger.warning("usage.clamp records wait for the next batch: the audit log cannot be written (\(error))")
        }
    }
}
