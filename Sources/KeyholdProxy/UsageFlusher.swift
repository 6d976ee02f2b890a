import Foundation
import KeyholdCore
import KeyholdStore
import Logging
import ServiceLifecycle

/// Moves journaled usage into SQLite in batches (one transaction per closed segment) and, at start, charges
/// the reservations a killed proxy left without settlement.
///
/// While the database cannot be written, closed segments wait on disk: memory stays flat, and they are
/// written once the database is writable again.
struct UsageFlusher: Service {
    let proxy: MeteringProxy

    func run() async throws {
        try await proxy.recoverJournal()
        var lastKeyUseAudit = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: proxy.configuration.flushInterval)
            await flushOnce()
            if ContinuousClock.now - lastKeyUseAudit >= proxy.configuration.keyUseAuditInterval {
                lastKeyUseAudit = .now
                await proxy.auditKeyUses()
                await proxy.auditClamps()
            }
        }
        await flushOnce()
        await proxy.auditKeyUses()
        await proxy.auditClamps()
    }

    func flushOnce() async {
        let journal = proxy.journal
        let store = proxy.store
        do {
            // Reading, decoding and inserting run on the flusher's own thread, not the cooperative pool.
            try await OffPool.run {
                for name in try journal.rotate() {
                    let path = journal.segments.path(name)
                    let rows = MeteringProxy.rows(flushing: UsageJournal.read(path))
                    try store.writeNow { tx in try tx.insertUsage(rows) }
                    unlink(path)
                }
            }
            proxy.flushed()
        } catch {
            proxy.logger.warning("usage is waiting in the journal: the database cannot be written (\(error)); retrying")
        }
    }
}

extension MeteringProxy {
    /// Replays every journal segment: settlements are stored, reservations never settled are charged in full.
    func recoverJournal() async throws {
        // Only what an earlier process left: this one's own segments are flushed as usual.
        let names = journal.leftBehind
        var settled: [String: JournalEntry] = [:]
        var reserved: [String: JournalEntry] = [:]
        for name in names {
            for entry in UsageJournal.read(journal.segments.path(name)) {
                if entry.kind == "s" { settled[entry.id] = entry } else { reserved[entry.id] = entry }
            }
        }
        var collected = settled.values.map(Self.row(from:))
        for (id, entry) in reserved where settled[id] == nil {
            collected.append(Self.row(from: Self.charged(entry, as: .reservation)))
        }
        let rows = collected
        if !rows.isEmpty {
            try await store.write { tx in try tx.insertUsage(rows) }
            logger.info(
                "usage journal replayed: \(settled.count) settled, \(rows.count - settled.count) interrupted requests charged their reservation")
        }
        for name in names { unlink(journal.segments.path(name)) }
    }

    /// A segment's rows: each settlement, and each reservation not settled in it, charged `in-flight` until its
    /// settlement (in a later segment) replaces it. So the fleet is charged for what a host had in flight even if
    /// the host never comes back: a host's death costs at most the reservations of its last flush interval.
    static func rows(flushing entries: [JournalEntry]) -> [UsageRow] {
        let settled = Set(entries.lazy.filter { $0.kind == "s" }.map(\.id))
        return entries.compactMap { entry in
            if entry.kind == "s" { return row(from: entry) }
            guard !settled.contains(entry.id) else { return nil }
            return row(from: charged(entry, as: .inFlight))
        }
    }

    /// A reservation charged in full, as a settlement of kind `charge`.
    static func charged(_ entry: JournalEntry, as charge: UsageCharge) -> JournalEntry {
        var charged = entry
        charged.kind = "s"
        charged.charged = charge.rawValue
        charged.status = 0
        charged.picoUSD = entry.reservedPicoUSD
        charged.input = entry.reservedTokens
        return charged
    }

    static func row(from entry: JournalEntry) -> UsageRow {
        UsageRow(
            requestID: entry.id, tenantID: entry.tenantID, sandboxID: entry.sandboxID, model: entry.model, inputTokens: entry.input,
            outputTokens: entry.output, cachedTokens: entry.cachedInput, cacheWriteTokens: entry.cacheWrite, reasoningTokens: entry.reasoning,
            costPicoUSD: entry.picoUSD, status: entry.status, charged: UsageCharge(rawValue: entry.charged) ?? .reservation,
            latencyMs: entry.latencyMs, createdAt: entry.time,
            key: entry.keyProvider.flatMap { provider in entry.keyVersion.map { UsageKey(provider: provider, version: $0) } },
            clampedFrom: entry.clampedFrom, responseID: entry.responseID
        )
    }
}
