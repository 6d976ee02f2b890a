import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdStore
import KeyholdTesting
import Testing

/// Random sequences of what admins, agents and hosts do (starts, stops, restarts, crashes, rotations, daemon restarts)
/// against an in-memory systemd, with Keyhold's promises checked after every step. Each sequence comes from a seed, so
/// a failure names the seed that reproduces it.
@Suite(.timeLimit(.minutes(1))) struct InProcessGeneratedTests {
    enum Step: CaseIterable {
        case start, stop, restart, crash, rotate, reconcile, restartDaemon
    }

    @Test(arguments: 1...12 as ClosedRange<UInt64>)
    func keyholdsPromisesHoldAfterEveryStepOfARandomSequence(seed: UInt64) async throws {
        var random = SplitMix64(seed: seed)
        let host = try InProcessHost { $0.maximumRestarts = 2 }
        var keys: [String: String] = [:]
        for index in 0..<2 {
            let tenant = InProcessTenants.name("gen\(index)")
            keys[tenant] = InProcessTenants.canary()
            try await host.tenant(tenant, key: keys[tenant])
        }
        let tenants = keys.keys.sorted()
        var history: [String] = []
        for _ in 0..<24 {
            let tenant = tenants[Int(random.next() % UInt64(tenants.count))]
            let step = Step.allCases[Int(random.next() % UInt64(Step.allCases.count))]
            history.append("\(step) \(tenant)")
            do {
                switch step {
                case .start: _ = try await host.sandboxes.start(tenant: tenant, actor: "test")
                case .stop: _ = try await host.sandboxes.stop(tenant: tenant, actor: "test")
                case .restart: _ = try await host.sandboxes.restart(tenant: tenant, actor: "test")
                case .crash: try await crash(tenant, on: host)
                case .rotate:
                    let key = InProcessTenants.canary()
                    _ = try await host.plane.rotateKey(
                        tenant: tenant, provider: "anthropic", AdminAPI.SetKey(key: key, baseURL: nil, validate: false, skipShapeCheck: true),
                        actor: "test")
                    keys[tenant] = key
                case .reconcile: try await host.sandboxes.reconcileOnce()
                case .restartDaemon: try await host.restart()
                }
            } catch let error as KeyholdError where error.code == .conflict {
                // Refused as it should be (a second start of a running tenant): the promises below still hold.
            }
            for tenant in tenants {
                try await checkPromises(tenant: tenant, key: keys[tenant]!, host: host, seed: seed, history: history)
            }
        }
    }

    /// The tenant's agent crashes; the reconciler handles it, and the restart it schedules is waited for (so that no
    /// task of this daemon is left running when the next step restarts it).
    private func crash(_ tenant: String, on host: InProcessHost) async throws {
        guard let unit = host.activeUnits(tenant: tenant).first else { return }
        host.systemd.crash(unit: unit)
        try await host.sandboxes.reconcileOnce()
        let failed = try await host.store.read { tx in try tx.latestSandbox(tenantID: try tx.tenant(named: tenant).id)?.state == .failed }
        if !failed { _ = await host.waitForNewUnit(of: tenant, except: [unit]) }
    }

    private func checkPromises(tenant: String, key: String, host: InProcessHost, seed: UInt64, history: [String]) async throws {
        let context = "seed \(seed): \(history.joined(separator: ", "))"
        let active = host.activeUnits(tenant: tenant)
        #expect(active.count <= 1, "at most one agent per tenant between steps (\(active)); \(context)")
        let recorded = try await host.store.read { tx in Set(try tx.liveSandboxes(tenantID: try tx.tenant(named: tenant).id).map(\.unit)) }
        #expect(Set(active).isSubset(of: recorded), "every running agent has its record (\(active) vs \(recorded)); \(context)")
        for unit in active {
            #expect(await host.injected("ANTHROPIC_API_KEY", unit: unit) == key, "each agent holds the active key; \(context)")
        }
        let injections = try await host.audit(tenant: tenant).filter { $0.event.action == AuditAction.keyInject.rawValue }
        #expect(injections.allSatisfy { $0.event.invocationID?.count == 32 }, "each injection names its invocation; \(context)")
    }
}

/// A small seedable generator (SplitMix64), so that a sequence can be replayed from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
