import BenchmarkSupport
import Dispatch
import Foundation
import KeyholdCore
import KeyholdSandbox
import Synchronization

extension Bench {
    /// (e) N starts sent at once, through Keyhold's API, against N `systemd-run`s of the same hardened unit sent at once:
    /// the wall time until every one of them returned, `options.concurrentRounds` rounds each, alternating.
    func measureConcurrentStarts() async throws {
        for count in options.concurrent {
            print("\n(e) \(count) starts at once, \(options.concurrentRounds) rounds of each kind, alternating (wall time until all returned)")
            let tenants = (0..<count).map { "bench-c\(count)-\($0)" }
            for tenant in tenants { try await createTenant(tenant, plan: "byok") }
            var floor = Series(name: "(e1) \(count) x systemd-run at once")
            var keyhold = Series(name: "(e2) \(count) x keyhold API start at once")
            for round in 0..<options.concurrentRounds {
                let units = (0..<count).map { "bench-cfloor-\(count)-\(round)-\($0).service" }
                let argvs = units.map { unit in
                    let run = ["/usr/bin/systemd-run"] + FloorUnit.systemdRunArguments(unit: unit, properties: floorProperties)
                    return Spawn.inNamespace(of: systemdPID, run)
                }
                let began = ContinuousClock.now
                let failures = Mutex(0)
                DispatchQueue.concurrentPerform(iterations: count) { index in
                    if (try? Spawn.run(argvs[index]))?.status != 0 { failures.withLock { $0 += 1 } }
                }
                floor.record(ContinuousClock.now - began)
                guard failures.withLock({ $0 }) == 0 else { throw BenchError("\(failures.withLock { $0 }) systemd-run starts failed") }
                for unit in units { try stopUnit(unit) }

                let start = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for tenant in tenants { group.addTask { _ = try await self.startSandbox(tenant) } }
                    try await group.waitForAll()
                }
                keyhold.record(ContinuousClock.now - start)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for tenant in tenants { group.addTask { try await self.stopSandbox(tenant) } }
                    try await group.waitForAll()
                }
            }
            print(Series.header)
            print(floor.row)
            print(keyhold.row)
            let ratio = keyhold.median / floor.median
            let target = count == 20 ? " (target at most 1.25x: \(ratio <= 1.25 ? "met" : "NOT met"))" : ""
            print("keyhold / floor, medians: \(String(format: "%.2f", ratio))x\(target)")
        }
    }
}
