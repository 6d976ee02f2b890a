// keyhold-bench-console: the tenant console's server-side render time, for a tenant with many audit records.
//
// In process, without systemd: a state directory, a BYOK tenant with a key and a managed tenant, each with
// --records audit records (a third of them key injections), then --renders renders of each one's console page
// (every database read the page needs plus the Mustache render, as a request does; no network). Prints the median
// and p99 per tenant. Target: median at most 5 ms with 10,000 records.
//
// Usage: keyhold-bench-console [--records N] [--renders N]
import ArgumentParser
import BenchmarkSupport
import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdStore
import KeyholdTesting

/// The command line.
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-console", abstract: "The tenant console's page renders with many audit records.")

    @Option(help: "Audit records of the tenant's own (and as many of another's, interleaved).")
    var records = 10_000
    @Option(help: "Timed renders of each page.")
    var renders = 500

    func validate() throws {
        try require(records, atLeast: 1, for: "--records")
        try require(renders, atLeast: 10, for: "--renders")
    }
}
let arguments = Arguments.parseOrExit()
let (records, renders) = (arguments.records, arguments.renders)

let idle = try IdleDaemon(label: "keyhold-bench-console")
let plane = idle.plane
let pages = try ConsolePages()

/// Makes a tenant with `records` audit records of its own (and as many of another tenant's, interleaved).
func prepare(_ name: String, plan: String, records: Int) async throws -> ConsoleSession {
    _ = try await plane.createTenant(.init(name: name, plan: plan, agent: ["/bin/sleep", "infinity"]), actor: "bench")
    if plan == "byok" {
        let key = "sk-ant-bench-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        _ = try await plane.setKey(
            tenant: name, provider: "anthropic", .init(key: key, baseURL: nil, validate: false, skipShapeCheck: false), actor: "bench")
    }
    let actions: [AuditAction] = [.keyInject, .sandboxStart, .keyValidate]
    var written = 0
    while written < records {
        let range = written..<min(records, written + 1000)
        try await plane.store.write { tx in
            for index in range {
                _ = try tx.appendAudit(
                    AuditEvent(
                        actor: "bench", action: actions[index % 3], tenant: name, provider: "anthropic", keyVersion: 1,
                        fingerprint: "0123456789abcdef",
                        unit: "keyhold-\(name)-\(index).service", details: ["n": String(index)]))
                _ = try tx.appendAudit(AuditEvent(actor: "bench", action: .keyInject, tenant: "other-\(name)", details: ["n": String(index)]))
            }
        }
        written = range.upperBound
    }
    return ConsoleSession(tenantID: 0, tenantName: name, csrfToken: TokenStore.generate(prefix: ""), expiresAt: "2999-01-01T00:00:00.000Z")
}

print("keyhold-bench-console: \(records) audit records per tenant (and as many of another tenant), \(renders) renders each, SQLite")
print(
    "machine: \(MachineFacts.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores, kernel \(MachineFacts.kernel), \(MachineFacts.build) build, load \(MachineFacts.loadAverage)"
)
for (name, plan) in [("bench-byok", "byok"), ("bench-managed", "managed")] {
    let session = try await prepare(name, plan: plan, records: records)
    var bytes = 0
    for _ in 0..<20 { bytes = try await ConsoleDashboard.render(plane: plane, pages: pages, session: session).utf8.count }
    var samples: [Double] = []
    for _ in 0..<renders {
        let started = ContinuousClock.now
        _ = try await ConsoleDashboard.render(plane: plane, pages: pages, session: session)
        samples.append((ContinuousClock.now - started) / .milliseconds(1))
    }
    let median = Percentiles.median(samples)
    let p99 = Percentiles.percentile(samples, 99)
    print(
        "\(plan) tenant: page \(bytes) bytes, render median \(String(format: "%.2f", median)) ms, p99 \(String(format: "%.2f", p99)) ms"
            + " (target: median ≤ 5 ms: \(median <= 5 ? "met" : "NOT met"))")
}
