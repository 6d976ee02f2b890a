import ArgumentParser
import BenchmarkSupport
import Foundation
import Glibc
import KeyholdClient
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdStore
import KeyholdTesting
import Synchronization

/// A fleet of three hosts on one PostgreSQL, on this machine: placement and start rate against one host on
/// SQLite, and the failover time of a host's tenants after its death. See `--help`.
let options = Options.parseOrExit()
print(
    "keyhold-bench-fleet: \(MachineFacts.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(MachineFacts.kernel), \(MachineFacts.build)"
)
let bench: FleetBench
do {
    bench = try FleetBench(options: options)
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-fleet: \(error)\n".utf8))
    exit(1)
}
let signalSources = CleanupOnSignal.install(program: "keyhold-bench-fleet") { [bench] in bench.tearDown() }

/// Starts every tenant through the hosts' APIs in turn; returns the wall time and where each went.
func startAll(_ tenants: [String], clients: [AdminClient], pin: String? = nil) async throws -> (Duration, [String: Int]) {
    let placed = Mutex<[String: Int]>([:])
    let began = ContinuousClock.now
    let indexed = Array(tenants.enumerated())
    try await bench.forEach(indexed) { index, tenant in
        let query = pin.map { "?host=\($0)" } ?? ""
        let sandbox = try await clients[index % clients.count].call("POST", "/v1/tenants/\(tenant)/sandbox/start\(query)", as: AdminAPI.Sandbox.self)
        placed.withLock { $0[sandbox.host ?? "?", default: 0] += 1 }
    }
    return (ContinuousClock.now - began, placed.withLock { $0 })
}

func stopAll(_ tenants: [String], client: (String) -> AdminClient) async throws -> Duration {
    let began = ContinuousClock.now
    try await bench.forEach(tenants.map { ($0, client($0)) }) { tenant, client in
        _ = try await client.call("POST", "/v1/tenants/\(tenant)/sandbox/stop", as: [AdminAPI.Sandbox].self)
    }
    return ContinuousClock.now - began
}

do {
    var singleRate: Double?
    if options.single > 0 {
        let single = try KeyholdHarness()
        try bench.serve(single, id: "single")
        let client = bench.client(single)
        let tenants = (0..<options.single).map { "bench-s\($0)" }
        try await bench.createTenants(tenants, through: client)
        let (took, _) = try await startAll(tenants, clients: [client])
        singleRate = Double(tenants.count) / secondsValue(took)
        print(
            "one host on SQLite: \(tenants.count) started in \(seconds(took)) = \(String(format: "%.1f", singleRate!)) starts/s (\(options.concurrency) in flight)"
        )
        let stopped = try await stopAll(tenants) { _ in client }
        print("  stopped in \(seconds(stopped))")
        _ = single.stopDaemon()
    }

    try bench.startFleet()
    let clients = bench.hosts.map(bench.client)
    let tenants = (0..<options.tenants).map { "bench-f\($0)" }
    try await bench.createTenants(tenants, through: clients[0])
    let (took, placed) = try await startAll(tenants, clients: clients)
    let rate = Double(tenants.count) / secondsValue(took)
    let spread = placed.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
    print(
        "fleet of 3 on PostgreSQL: \(tenants.count) placed and started in \(seconds(took)) = \(String(format: "%.1f", rate)) starts/s (\(spread); requests sent to the 3 hosts in turn)"
    )
    if let singleRate { print("  against one host on SQLite: \(String(format: "%.2f", rate / singleRate))x") }
    let listed = try await clients[0].call("GET", "/v1/sandboxes", as: [AdminAPI.Sandbox].self)
    print("  running per the fleet's list: \(listed.filter { $0.state == "running" }.count)/\(tenants.count)")
    let placedOn = Dictionary(uniqueKeysWithValues: listed.map { ($0.tenant, $0.host ?? "") })
    let stopped = try await stopAll(tenants) { tenant in clients[FleetBench.hostIDs.firstIndex(of: placedOn[tenant] ?? "") ?? 0] }
    print("  stopped in \(seconds(stopped))")

    if options.failover > 0 {
        let victims = Array(tenants.prefix(options.failover))
        let (pinned, _) = try await startAll(victims, clients: [clients[2]], pin: "fleet-c")
        print("\nfailover: \(victims.count) tenants started on fleet-c in \(seconds(pinned)); lease \(options.lease) s")
        let units = try await clients[0].call("GET", "/v1/sandboxes", as: [AdminAPI.Sandbox].self).filter { $0.host == "fleet-c" }.map(\.unit)
        // The host dies: its daemon and its agents at once.
        let killed = ContinuousClock.now
        _ = bench.hosts[2].stopDaemon(signal: SIGKILL)
        for unit in units { try? bench.manager.killUnit(name: unit, signal: SIGKILL) }
        // Watched in the database every 50 ms (the hosts' APIs are busy starting).
        guard let url = bench.hosts[0].database?.url else { throw BenchError("the fleet has no database URL") }
        let store = try Store.openReadOnly(location: url)
        var movedAfter: [String: Duration] = [:]
        while movedAfter.count < victims.count && ContinuousClock.now - killed < .seconds(180) {
            let fleet = try store.readNow { tx in try tx.allLiveSandboxes() }
            for (tenant, sandbox) in fleet where sandbox.state == .running && sandbox.host != "fleet-c" && movedAfter[tenant] == nil {
                movedAfter[tenant] = ContinuousClock.now - killed
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let first = movedAfter.values.map(secondsValue).min() ?? 0
        print("  the first tenant ran elsewhere \(String(format: "%.2f", first)) s after the kill (the lease, then the claim and one start)")
        let times = movedAfter.values.map(secondsValue)
        print(
            "  \(movedAfter.count)/\(victims.count) running elsewhere; from the kill: median \(String(format: "%.2f", Percentiles.median(times))) s, max \(String(format: "%.2f", times.max() ?? 0)) s (target: at most 15 s with a 10 s lease)"
        )
        let hosts = Dictionary(grouping: try await clients[0].call("GET", "/v1/sandboxes", as: [AdminAPI.Sandbox].self), by: { $0.host ?? "?" })
        print("  now on: " + hosts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.count)" }.joined(separator: ", "))
    }
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-fleet: \(error)\n".utf8))
    for harness in bench.hosts { FileHandle.standardError.write(Data(String(harness.daemonLog.suffix(1500)).utf8)) }
    bench.tearDown()
    exit(1)
}
bench.tearDown()
_ = signalSources
print("\ncleaned up: daemons, units, private systemd and PostgreSQL cluster stopped")
