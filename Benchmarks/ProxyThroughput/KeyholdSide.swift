import BenchmarkSupport
import Foundation
import KeyholdStore
import KeyholdTesting
import Synchronization

/// The real daemon with its metering proxy on loopback in front of the fake provider, and one managed tenant whose
/// caps are large enough never to refuse, with a proxy token as a sandbox start would create it.
final class KeyholdSide: @unchecked Sendable {
    let harness: KeyholdHarness
    let port: Int
    let token: String

    static let features = [
        "proxy token auth (SHA-256 hash looked up in SQLite, cached until a token, tenant or key changes)", "model allow-list",
        "caps on: requests/minute, tokens/day, tokens/month, USD/month",
        "reservation before forwarding + settlement", "usage journal (one write(2) per reservation and settlement)",
        "batched usage rows in SQLite every 200 ms", "alerts at 50/80/100% (armed, never reached)", "cost per model",
    ]

    init(provider: FakeProvider) throws {
        harness = try KeyholdHarness()
        port = try LoopbackPort.free()
        let plans = harness.root + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: BuildProducts.plansDirectory + "/byok.yaml", toPath: plans + "/byok.yaml")
        // The managed plan with every cap on but far out of reach, so nothing is refused.
        let managed = try String(contentsOfFile: BuildProducts.plansDirectory + "/managed.yaml", encoding: .utf8)
            .replacingOccurrences(of: "tokens_per_day: 2000000", with: "tokens_per_day: 100000000000")
            .replacingOccurrences(of: "tokens_per_month: 20000000", with: "tokens_per_month: 1000000000000")
            .replacingOccurrences(of: "requests_per_minute: 60", with: "requests_per_minute: 100000000")
            .replacingOccurrences(of: "usd_per_month: 25", with: "usd_per_month: 1000000")
        try managed.write(toFile: plans + "/managed.yaml", atomically: true, encoding: .utf8)
        try harness.startDaemon(
            systemdBus: nil,
            extraArguments: [
                "--plans", plans, "--proxy", "127.0.0.1:\(port)", "--provider-base-url", "openai=\(provider.baseURL)",
                "--provider-base-url", "anthropic=\(provider.baseURL)",
            ]
        )
        guard LoopbackPort.waitUntilListening(port) else { throw BenchError("the proxy did not listen on 127.0.0.1:\(port)") }
        for (name, key) in [("openai", FakeProvider.Configuration.defaultOpenAIKey), ("anthropic", FakeProvider.Configuration.defaultAnthropicKey)] {
            let set = try harness.cli(["platform", "set-key", name, "--no-validate", "--skip-shape-check"], input: Array(key.utf8))
            guard set.status == 0 else { throw BenchError("platform set-key \(name) failed: \(set.stderr)") }
        }
        let created = try harness.cli(["tenant", "create", "bench", "--plan", "managed"])
        guard created.status == 0 else { throw BenchError("tenant create failed: \(created.stderr)") }
        let store = try harness.openStore()
        token = try store.writeNow { tx in
            let tenant = try tx.tenant(named: "bench")
            let sandbox = try tx.insertSandbox(tenantID: tenant.id, tenantName: tenant.name)
            return try tx.createProxyToken(tenantID: tenant.id, sandboxID: sandbox.id)
        }
    }

    var target: Target { Target(name: "keyhold", port: port, key: token) }
    var pid: Int32? { harness.daemonPID }
    var residentKiB: Int? { pid.flatMap(MachineFacts.residentKiB(of:)) }
    var anonymousKiB: Int? { pid.flatMap(MachineFacts.anonymousKiB(of:)) }

    /// Rows in `usage_requests`.
    func usageRows() throws -> Int {
        try Store.openReadOnly(location: harness.storeLocation).readNow { tx in try tx.usageRequestCount() }
    }

    /// The row count once the flusher has caught up (unchanged for a second; bounded).
    func settledUsageRows(timeout: Double = 30) throws -> Int {
        let deadline = Date().addingTimeInterval(timeout)
        var last = try usageRows()
        while Date() < deadline {
            usleep(1_000_000)
            let now = try usageRows()
            if now == last { return now }
            last = now
        }
        return last
    }

    /// Makes every insert into `usage_requests` fail (as a full disk would), or undoes it.
    func blockUsageWrites(_ blocked: Bool) throws {
        if blocked {
            try harness.tamper(
                """
                CREATE TRIGGER IF NOT EXISTS keyhold_bench_block_usage BEFORE INSERT ON usage_requests
                BEGIN SELECT RAISE(ABORT, 'disk full (keyhold-bench-proxy)'); END
                """,
                postgresql: """
                    CREATE OR REPLACE FUNCTION keyhold_bench_block_usage() RETURNS trigger AS $$
                    BEGIN RAISE EXCEPTION 'disk full (keyhold-bench-proxy)'; END $$ LANGUAGE plpgsql;
                    CREATE OR REPLACE TRIGGER keyhold_bench_block_usage BEFORE INSERT ON usage_requests
                    FOR EACH ROW EXECUTE FUNCTION keyhold_bench_block_usage();
                    """)
        } else {
            try harness.tamper(
                "DROP TRIGGER IF EXISTS keyhold_bench_block_usage",
                postgresql: "DROP TRIGGER IF EXISTS keyhold_bench_block_usage ON usage_requests")
        }
    }

    /// Journal segments waiting on disk (count, bytes).
    func journalBacklog() -> (files: Int, bytes: Int) {
        var files = 0
        var bytes = 0
        let enumerator = FileManager.default.enumerator(atPath: harness.stateDirectory)
        while let relative = enumerator?.nextObject() as? String {
            guard (relative as NSString).lastPathComponent.hasPrefix("segment-") else { continue }
            files += 1
            let path = (harness.stateDirectory as NSString).appendingPathComponent(relative)
            bytes += ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
        }
        return (files, bytes)
    }

    func tearDown() {
        try? blockUsageWrites(false)
        harness.deleteTenants()
        harness.stopDaemon()
    }
}

/// Samples a process's resident memory every `interval` until stopped.
final class MemorySampler: Sendable {
    private final class Samples: Sendable {
        let list = Mutex<[Int]>([])
    }
    private let samples = Samples()
    private let task: Task<Void, Never>

    init(interval: Duration = .seconds(5), tree: Bool = false, pid: @escaping @Sendable () -> Int32?) {
        let samples = self.samples
        task = Task {
            while !Task.isCancelled {
                if let pid = pid(), let kib = tree ? Machine.treeResidentKiB(of: pid) : MachineFacts.residentKiB(of: pid) {
                    samples.list.withLock { $0.append(kib) }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Stops sampling; returns the samples in KiB.
    func stop() async -> [Int] {
        task.cancel()
        await task.value
        return samples.list.withLock { $0 }
    }
}
