import BenchmarkSupport
import Foundation
import KeyholdClient
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdTesting

/// Three `keyhold serve` daemons as hosts of one fleet on a throwaway PostgreSQL cluster, a private systemd (or
/// the host's) under them, and the figures.
final class FleetBench: @unchecked Sendable {
    static let agent = ["/bin/sleep", "infinity"]
    static let hostIDs = ["fleet-a", "fleet-b", "fleet-c"]

    let options: Options
    let systemd: SystemdInstance
    let manager: SystemdManager
    let postgres: TestPostgres
    /// One installation per host, each with its own state directory and a copy of the first one's KEK files.
    private(set) var hosts: [KeyholdHarness] = []
    private let lock = NSLock()
    private var tornDown = false

    init(options: Options) throws {
        self.options = options
        systemd = try PrivateSystemd.hostOrPrivate(diesWithThisProcess: true, timeout: .seconds(120))
        manager = SystemdManager(address: systemd.busAddress)
        postgres = try TestPostgres()
    }

    /// Starts a daemon on `harness` as host `id` on the shared systemd.
    func serve(_ harness: KeyholdHarness, id: String) throws {
        try harness.startDaemon(
            systemdBus: .some(systemd.busAddress),
            extraArguments: ["--host-id", id, "--max-sandboxes", "5000", "--lease-seconds", String(options.lease)])
    }

    /// The three hosts on one database, sharing the first one's KEK.
    func startFleet() throws {
        let database = (name: "fleet", url: try postgres.makeDatabase("fleet"))
        let first = try KeyholdHarness(database: database)
        hosts = [first]
        for _ in 1..<Self.hostIDs.count {
            let other = try KeyholdHarness(database: database)
            for file in ["kek", "audit-signing.key"] {
                try? FileManager.default.removeItem(atPath: other.stateDirectory + "/" + file)
                try FileManager.default.copyItem(atPath: first.stateDirectory + "/" + file, toPath: other.stateDirectory + "/" + file)
            }
            hosts.append(other)
        }
        for (harness, id) in zip(hosts, Self.hostIDs) { try serve(harness, id: id) }
    }

    func client(_ harness: KeyholdHarness) -> AdminClient { AdminClient(socketPath: harness.socketPath) }

    /// Creates `names` (BYOK, a random unvalidated key each), `concurrency` at a time.
    func createTenants(_ names: [String], through client: AdminClient) async throws {
        try await forEach(names) { name in
            _ = try await client.call(
                "POST", "/v1/tenants", body: AdminAPI.CreateTenant(name: name, plan: "byok", agent: Self.agent), as: AdminAPI.Tenant.self)
            let key = "sk-ant-bench-" + (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            _ = try await client.call(
                "PUT", "/v1/tenants/\(name)/keys/anthropic", body: AdminAPI.SetKey(key: key, baseURL: nil, validate: false, skipShapeCheck: true),
                as: AdminAPI.Key.self)
        }
    }

    /// Runs `body` for each item, `options.concurrency` at a time.
    func forEach<Item: Sendable>(_ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            var iterator = items.makeIterator()
            for _ in 0..<options.concurrency {
                guard let item = iterator.next() else { break }
                group.addTask { try await body(item) }
            }
            while try await group.next() != nil {
                if let item = iterator.next() { group.addTask { try await body(item) } }
            }
        }
    }

    /// Stops the daemons, the units they left, the private systemd and the cluster. Safe to call twice.
    func tearDown() {
        lock.lock()
        defer { lock.unlock() }
        guard !tornDown else { return }
        tornDown = true
        // Each host deletes the tenants it runs (one placed on another host is that host's to stop).
        for harness in hosts { harness.deleteTenants() }
        for harness in hosts { _ = harness.stopDaemon() }
        for unit in (try? manager.listUnits(matching: "keyhold-bench*.service")) ?? [] {
            try? manager.killUnit(name: unit, signal: SIGKILL)
            try? manager.stopUnit(name: unit, timeout: .seconds(10))
        }
        try? systemd.stop()
        postgres.destroy()
    }
}

/// Seconds, with two decimals.
func seconds(_ duration: Duration) -> String {
    let (whole, fraction) = duration.components
    return String(format: "%.2f s", Double(whole) + Double(fraction) / 1e18)
}

func secondsValue(_ duration: Duration) -> Double {
    let (whole, fraction) = duration.components
    return Double(whole) + Double(fraction) / 1e18
}
