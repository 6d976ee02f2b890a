import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

@testable import KeyholdOrchestration
@testable import KeyholdServer

/// A daemon restarted against an in-memory systemd whose units outlived it: orphans are stopped, sandboxes caught
/// half-started are restarted with a fresh injection, running ones and starts in flight are left alone.
@Suite(.offCooperativePool, .timeLimit(.minutes(1))) struct InProcessRecoveryTests {
    @Test func aRestartedDaemonLeavesRunningAgentsAloneAndStopsOrphans() async throws {
        let host = try InProcessHost()
        let (tenant, key, unit) = try await host.runningTenant("orphan")
        // A unit of this tenant that no record names (its row lost with a crash before the write).
        let orphan = "keyhold-\(tenant)-999.service"
        _ = try await host.systemd.startTransientUnit(name: orphan, properties: [], timeout: .seconds(1), whenForked: nil)

        try await host.restart()
        #expect(host.activeUnits(tenant: tenant) == [unit], "the running agent kept running; the orphan was stopped")
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: unit) == key)
        let stops = try await host.audit(tenant: tenant).filter { $0.event.action == AuditAction.sandboxStop.rawValue }
        #expect(stops.map(\.event.unit) == [orphan] && stops.first?.event.details["reason"] == "orphaned unit")
        // Its way out was opened again by the new daemon.
        #expect(host.namespaces.port(unit: unit, inside: LoopbackAddress(ip: "127.0.0.1", port: 3128)) != nil)
    }

    @Test func aSandboxCaughtHalfStartedIsStoppedAndStartedAgainWithAFreshInjection() async throws {
        let host = try InProcessHost()
        let (tenant, key, unit) = try await host.runningTenant("half")
        // As if the daemon died after starting the unit, before writing its key: the row still says starting.
        try await host.store.write { tx in
            let sandbox = try #require(try tx.liveSandboxes(tenantID: try tx.tenant(named: tenant).id).first)
            try tx.updateSandbox(sandbox.id, state: .starting)
        }
        try await host.restart()
        #expect(host.systemd.unit(unit) == nil, "the half-started unit was stopped")
        try await host.sandboxes.reconcileOnce()
        let restarted = await host.waitForNewUnit(of: tenant, except: [unit])
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: restarted) == key)
    }

    @Test func aFencedHostStopsItsAgentsWithoutTheDatabaseAndRestartsThemWhenItRecovers() async throws {
        let host = try InProcessHost()
        let (tenant, key, unit) = try await host.runningTenant("fence")
        // The heartbeat's path: the lease goes stale, the host fences itself.
        let reason = try #require(host.sandboxes.lease.fenceIfStale(now: .now + .seconds(3600)))
        await host.sandboxes.fence(reason: reason)
        #expect(host.activeUnits(tenant: tenant).isEmpty, "every agent was killed")
        try await host.sandboxes.reconcileOnce()  // fenced: touches nothing
        #expect(host.activeUnits(tenant: tenant).isEmpty)
        #expect(host.sandboxes.lease.renewed(sentAt: .now), "the lease came back")
        try await host.sandboxes.reconcileOnce()
        let restarted = await host.waitForNewUnit(of: tenant, except: [unit])
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: restarted) == key)
        let fenced = try await host.audit(tenant: tenant).filter { $0.event.action == AuditAction.sandboxFenced.rawValue }
        #expect(fenced.count == 1, "the fence's stop is recorded as such, not as a crash")
    }

    @Test func recoveryLeavesAStartInFlightAlone() async throws {
        let host = try InProcessHost()
        let tenant = InProcessTenants.name("inflight")
        let key = InProcessTenants.canary()
        try await host.tenant(tenant, key: key)
        let prefix = "keyhold-\(tenant)-"
        let events = host.systemd.unitEvents(prefixes: [prefix])
        host.systemd.holdStarts(of: prefix)
        let start = Task { try await host.sandboxes.start(tenant: tenant, actor: "test") }
        // The unit is up (its job held) and its record still says starting: what recovery, which runs while the admin
        // API already serves, must take neither for a start a crash interrupted nor for an orphan.
        for await event in events {
            if case .changed(_, activeState: "activating") = event { break }
        }
        let recovery = Task { try await host.sandboxes.recoverAfterRestart() }
        // Recovery waits for the tenant's lock. The pause gives one that did not the time to stop the unit; it cannot
        // make a correct recovery fail.
        try await Task.sleep(for: .milliseconds(300))
        host.systemd.releaseStarts(of: prefix)
        let sandbox = try await start.value
        try await recovery.value
        #expect(host.activeUnits(tenant: tenant) == [sandbox.unit], "the started agent runs")
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: sandbox.unit) == key)
        let stops = try await host.audit(tenant: tenant).filter { $0.event.action == AuditAction.sandboxStop.rawValue }
        #expect(stops.isEmpty, "nothing was stopped: \(stops.map { $0.event.details })")
    }
}
