import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import PropertyBased
import Testing

/// Random sequences of what admins, agents and hosts do (starts, stops, restarts, crashes, rotations, daemon restarts)
/// against an in-memory systemd, with Keyhold's promises checked after every step. The sequences come from
/// swift-property-based: a failing one is shrunk to the fewest steps that still fail, and reported with the seed that
/// replays it (`.fixedSeed(...)` on the test).
///
/// Alone it takes 13 s on SQLite and 46 s on PostgreSQL, where each sequence makes a database of its own; beside three
/// other tests on 2 cores, over three minutes there. The limit is for a hang.
@Suite(.offCooperativePool, .timeLimit(.minutes(6))) struct InProcessGeneratedTests {
    enum Action: CaseIterable, Sendable {
        case start, stop, restart, crash, rotate, reconcile, restartDaemon
    }

    /// One step: an action on one of the two tenants.
    struct Step: Sendable, CustomStringConvertible {
        let action: Action
        let tenant: Int
        var description: String { "\(action) gen\(tenant)" }
    }

    static let sequences = zip(Gen<Action>.case, Gen.int(in: 0...1)).map { Step(action: $0, tenant: $1) }.array(of: 1...24)

    @Test func keyholdsPromisesHoldAfterEveryStepOfARandomSequence() async throws {
        await propertyCheck(count: 40, input: Self.sequences) { steps in
            try await run(steps)
        }
    }

    private func run(_ steps: [Step]) async throws {
        let host = try InProcessHost { $0.maximumRestarts = 2 }
        var keys: [String: String] = [:]
        let tenants = (0..<2).map { InProcessTenants.name("gen\($0)") }
        for tenant in tenants {
            keys[tenant] = InProcessTenants.canary()
            try await host.tenant(tenant, key: keys[tenant])
        }
        var history: [String] = []
        for step in steps {
            let tenant = tenants[step.tenant]
            history.append(step.description)
            do {
                switch step.action {
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
                try await checkPromises(tenant: tenant, key: keys[tenant]!, host: host, history: history)
            }
        }
    }

    /// The tenant's agent crashes; the reconciler handles it, and the restart it schedules is waited for (so that no
    /// task of this daemon is left running when the next step restarts it).
    private func crash(_ tenant: String, on host: InProcessHost) async throws {
        guard let unit = host.activeUnits(tenant: tenant).first else { return }
        host.systemd.crash(unit: unit)
        // Once a rotation made the daemon follow systemd's signals, it knows a unit's state from them, and its follower
        // applies the crash's signal in a task of its own: a pass that runs first still sees the unit alive. The
        // daemon's reconciler runs a pass at each signal; here passes run until the crash is recorded (bounded: 10 s).
        let deadline = ContinuousClock.now + .seconds(10)
        var recorded = false
        while !recorded && ContinuousClock.now < deadline {
            try await host.sandboxes.reconcileOnce()
            recorded = try await host.store.read { tx in
                try !tx.liveSandboxes(tenantID: try tx.tenant(named: tenant).id).contains { $0.unit == unit && $0.state == .running }
            }
            if !recorded { try await Task.sleep(for: .milliseconds(2)) }
        }
        try #require(recorded, "the reconciler never recorded the crash of \(unit)")
        let failed = try await host.store.read { tx in try tx.latestSandbox(tenantID: try tx.tenant(named: tenant).id)?.state == .failed }
        if !failed { _ = await host.waitForNewUnit(of: tenant, except: [unit]) }
    }

    private func checkPromises(tenant: String, key: String, host: InProcessHost, history: [String]) async throws {
        let context = "after \(history.joined(separator: ", "))"
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
