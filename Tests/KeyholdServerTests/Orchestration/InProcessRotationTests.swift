import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Key rotation against an in-memory systemd: a daemon killed between any two steps converges after its restart, and a
/// new agent that dies within its readiness window is heard of at once and leaves the old one running.
@Suite(.offCooperativePool, .timeLimit(.minutes(1))) struct InProcessRotationTests {
    static let newKeyWins = ["rotation.after-new-ready", "rotation.stopping-old"]

    @Test(arguments: ["rotation.before-new-unit", "rotation.new-unit-starting", "rotation.after-new-ready", "rotation.stopping-old"])
    func aDaemonKilledAtAnyStepOfARotationConvergesAfterItsRestart(step: String) async throws {
        let (parked, parkedAt) = AsyncStream.makeStream(of: String.self)
        let host = try InProcessHost(crashPoints: .parkForever(at: step, parked: parkedAt))
        let (tenant, oldKey, oldUnit) = try await host.runningTenant("crash")
        let newKey = InProcessTenants.canary()

        // The rotation parks at the step (for good, as a killed daemon's work stops), or ends before reaching it.
        Task {
            do {
                let rotation = try await host.plane.rotateKey(
                    tenant: tenant, provider: "anthropic", AdminAPI.SetKey(key: newKey, baseURL: nil, validate: false, skipShapeCheck: true),
                    actor: "test")
                parkedAt.yield("the rotation finished before the step: \(rotation)")
            } catch {
                parkedAt.yield("the rotation failed before the step: \(error)")
            }
        }
        var points = parked.makeAsyncIterator()
        let reached = await points.next()
        try #require(reached == step, "the old daemon stopped at \(step)")

        try await host.restart()
        let running = host.activeUnits(tenant: tenant)
        #expect(running.count == 1, "one agent runs after recovery: \(running)")
        let unit = try #require(running.first)
        let rotations = try await host.store.read { tx in try tx.runningRotations(host: nil) }
        #expect(rotations.isEmpty, "no rotation is left running")
        if Self.newKeyWins.contains(step) {
            #expect(unit != oldUnit)
            #expect(await host.injected("ANTHROPIC_API_KEY", unit: unit) == newKey)
            #expect(try await host.keyStates(tenant) == ["1:retired", "2:active"])
        } else {
            #expect(unit == oldUnit, "the old agent kept running")
            #expect(await host.injected("ANTHROPIC_API_KEY", unit: unit) == oldKey)
            #expect(try await host.keyStates(tenant) == ["1:active", "2:failed"])
        }
        let status = try await host.sandboxes.status(tenant: tenant)
        #expect(status.map(\.unit) == [unit], "the records agree with systemd")
    }

    @Test func aNewAgentThatDiesInItsReadinessWindowIsHeardAtOnceAndTheOldOneKeepsRunning() async throws {
        let window = Duration.seconds(20)
        let host = try InProcessHost { $0.readinessWindow = window }
        let (tenant, oldKey, oldUnit) = try await host.runningTenant("ready")
        // The new unit dies as soon as it is active.
        let events = host.systemd.unitEvents(prefixes: ["keyhold-\(tenant)-"])
        let killer = Task {
            for await event in events {
                if case .changed(unit: let unit, activeState: let state) = event, state == "active", unit != oldUnit {
                    host.systemd.crash(unit: unit, status: 2)
                    return
                }
            }
        }
        let began = ContinuousClock.now
        await #expect(throws: KeyholdError.self) {
            try await host.plane.rotateKey(
                tenant: tenant, provider: "anthropic",
                AdminAPI.SetKey(key: InProcessTenants.canary(), baseURL: nil, validate: false, skipShapeCheck: true), actor: "test")
        }
        let took = ContinuousClock.now - began
        killer.cancel()
        #expect(took < window / 2, "the failure came from the unit's signal, not the end of the window (\(took))")
        #expect(host.activeUnits(tenant: tenant) == [oldUnit])
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: oldUnit) == oldKey)
        #expect(try await host.keyStates(tenant) == ["1:active", "2:failed"])
    }

    @Test func aRotationWaitsOutTheReadinessWindowBeforeStoppingTheOldAgent() async throws {
        let window = Duration.milliseconds(300)
        let host = try InProcessHost { $0.readinessWindow = window }
        let (tenant, _, oldUnit) = try await host.runningTenant("window")
        let newKey = InProcessTenants.canary()
        let began = ContinuousClock.now
        let rotation = try await host.plane.rotateKey(
            tenant: tenant, provider: "anthropic", AdminAPI.SetKey(key: newKey, baseURL: nil, validate: false, skipShapeCheck: true),
            actor: "test")
        #expect(ContinuousClock.now - began >= window)
        #expect(rotation.oldUnits == [oldUnit] && rotation.newUnits.count == 1)
        let newUnit = try #require(rotation.newUnits.first)
        #expect(host.activeUnits(tenant: tenant) == [newUnit])
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: newUnit) == newKey)
    }
}
