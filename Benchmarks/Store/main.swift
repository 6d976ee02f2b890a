// keyhold-bench-store: the typed store on SQLite against PostgreSQL, side by side in one run, on this machine.
//
// For each backend: audit appends per second (each append its own write transaction with its audit record, as the
// control plane does), sequentially and from 8 concurrent writers (one hash chain: appends are serialised), a
// tenant lookup's latency (a read transaction), and usage rows stored per second in flusher-sized batches.
// PostgreSQL is a throwaway cluster on 127.0.0.1 (TestPostgres, fsync off as in the tests: figures are the
// protocol's and the engine's, not the disk's); SQLite is a file with synchronous=FULL (it does sync).
//
// Usage: keyhold-bench-store [--appends N] [--runs N]
import ArgumentParser
import BenchmarkSupport
import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdTesting

/// The command line.
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-store", abstract: "Audit appends, tenant lookups and usage rows on SQLite against PostgreSQL.")

    @Option(help: "Audit appends per run.")
    var appends = 1000
    @Option(help: "Runs of each measurement (medians are printed).")
    var runs = 5

    func validate() throws {
        try require(appends, atLeast: 10, for: "--appends")
        try require(runs, atLeast: 1, for: "--runs")
    }
}
let arguments = Arguments.parseOrExit()
let (appends, runs) = (arguments.appends, arguments.runs)

/// One backend's figures, medians over the runs.
struct Figures {
    var sequentialAppends: [Double] = []
    var concurrentAppends: [Double] = []
    var lookupMicroseconds: [Double] = []
    var usageRows: [Double] = []
}

func measure(_ store: Store, appends: Int) async throws -> (sequential: Double, concurrent: Double, lookup: Double, usage: Double) {
    let tenant = try await store.write { tx in
        try tx.insertTenant(name: try TenantName("bench-\(UUID().uuidString.prefix(8).lowercased())"), plan: "byok", agent: ["/bin/true"])
    }
    var started = ContinuousClock.now
    for index in 0..<appends {
        try await store.write { tx in
            _ = try tx.appendAudit(AuditEvent(actor: "bench", action: .tenantResume, tenant: tenant.name, details: ["n": String(index)]))
        }
    }
    let sequential = Double(appends) / ((ContinuousClock.now - started) / .seconds(1))

    started = ContinuousClock.now
    try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in 0..<8 {
            group.addTask {
                for index in 0..<(appends / 8) {
                    try await store.write { tx in
                        _ = try tx.appendAudit(
                            AuditEvent(actor: "bench", action: .tenantResume, tenant: tenant.name, details: ["w": "\(writer)/\(index)"]))
                    }
                }
            }
        }
        try await group.waitForAll()
    }
    let concurrent = Double(appends / 8 * 8) / ((ContinuousClock.now - started) / .seconds(1))

    var lookups: [Double] = []
    for _ in 0..<200 {
        let begin = ContinuousClock.now
        _ = try await store.read { tx in try tx.tenant(named: tenant.name) }
        lookups.append((ContinuousClock.now - begin) / .microseconds(1))
    }
    let lookup = Percentiles.median(lookups)

    let batches = 20
    started = ContinuousClock.now
    for batch in 0..<batches {
        let rows = (0..<100).map { index in
            UsageRow(
                requestID: "\(tenant.id)-\(batch)-\(index)-\(UUID().uuidString)", tenantID: tenant.id, sandboxID: nil, model: "gpt-4o-mini",
                inputTokens: 10, outputTokens: 5, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, costPicoUSD: 42, status: 200,
                charged: .usage, latencyMs: 1, createdAt: Timestamp.now())
        }
        try await store.write { tx in try tx.insertUsage(rows) }
    }
    let usage = Double(batches * 100) / ((ContinuousClock.now - started) / .seconds(1))
    guard try await store.read({ tx in try tx.verifyAudit() }).problem == nil else { throw BenchError("the audit chain does not verify") }
    return (sequential, concurrent, lookup, usage)
}

extension Figures {
    mutating func add(_ run: (sequential: Double, concurrent: Double, lookup: Double, usage: Double)) {
        sequentialAppends.append(run.sequential)
        concurrentAppends.append(run.concurrent)
        lookupMicroseconds.append(run.lookup)
        usageRows.append(run.usage)
    }
}

let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-bench-store-\(UUID().uuidString.prefix(8))").path
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: directory) }
let postgres = try TestPostgres()
defer { postgres.destroy() }

print("keyhold-bench-store: \(appends) audit appends per run, \(runs) runs; \(MachineFacts.cpuModel); \(MachineFacts.build)")
var sqlite = Figures()
var postgresql = Figures()
for run in 0..<runs {
    sqlite.add(try await measure(try Store.open(location: directory + "/run\(run).db"), appends: appends))
    postgresql.add(try await measure(try Store.open(location: try postgres.makeDatabase("run\(run)")), appends: appends))
}

func row(_ name: String, _ sqlite: [Double], _ postgres: [Double], _ unit: String, decimals: Int = 0) {
    let format = "%.\(decimals)f"
    print(
        pad(name, 34) + pad(String(format: format, Percentiles.median(sqlite)) + " " + unit, 18, left: true)
            + pad(String(format: format, Percentiles.median(postgres)) + " " + unit, 18, left: true))
}
print(pad("median of \(runs) runs", 34) + pad("SQLite", 18, left: true) + pad("PostgreSQL", 18, left: true))
row("audit appends, one writer", sqlite.sequentialAppends, postgresql.sequentialAppends, "/s")
row("audit appends, 8 writers", sqlite.concurrentAppends, postgresql.concurrentAppends, "/s")
row("tenant lookup (read txn), median", sqlite.lookupMicroseconds, postgresql.lookupMicroseconds, "µs")
row("usage rows, batches of 100", sqlite.usageRows, postgresql.usageRows, "/s")
