import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore
import KeyholdTesting
import Testing

/// Two hosts of a fleet in process: one PostgreSQL database, a systemd in memory each. A start pinned to the other
/// host runs there and only there; a host that stops renewing its lease loses its tenants to the other, which starts
/// them with a fresh, audited injection.
@Suite(.timeLimit(.minutes(1))) struct InProcessFleetTests {
    static func fleet() throws -> (a: InProcessHost, b: InProcessHost) {
        let a = try InProcessHost(fleet: ("a", nil))
        let b = try InProcessHost(fleet: ("b", a))
        return (a, b)
    }

    /// Runs `host`'s reconciler (placements claimed, crashes restarted) while `body` runs.
    static func reconciling<T: Sendable>(_ host: InProcessHost, _ body: () async throws -> T) async throws -> T {
        let reconciler = Task { try await SandboxReconciler(sandboxes: host.sandboxes).run() }
        defer { reconciler.cancel() }
        return try await body()
    }

    @Test func aStartPinnedToAnotherHostRunsThereAndOnlyThere() async throws {
        let (a, b) = try Self.fleet()
        let tenant = InProcessTenants.name("pin")
        let key = InProcessTenants.canary()
        try await a.tenant(tenant, key: key)
        let sandbox = try await Self.reconciling(b) { try await a.sandboxes.start(tenant: tenant, actor: "test", host: "b") }
        #expect(sandbox.host == "b")
        #expect(a.activeUnits(tenant: tenant).isEmpty, "host a started nothing")
        #expect(b.activeUnits(tenant: tenant) == [sandbox.unit])
        #expect(await b.injected("ANTHROPIC_API_KEY", unit: sandbox.unit) == key)
        // A second start anywhere is refused while it runs.
        await #expect(throws: KeyholdError.self) { try await a.sandboxes.start(tenant: tenant, actor: "test") }
    }

    @Test func aHostPastItsLeaseLosesItsTenantsToAnotherWhichInjectsAfresh() async throws {
        let (a, b) = try Self.fleet()
        let tenant = InProcessTenants.name("failover")
        let key = InProcessTenants.canary()
        try await a.tenant(tenant, key: key)
        let first = try await b.sandboxes.start(tenant: tenant, actor: "test", host: "b")
        #expect(first.host == "b")
        // b's heartbeat goes silent: an hour old, far past its lease.
        try a.tamper("UPDATE hosts SET heartbeat_ms = heartbeat_ms - 3600000 WHERE id = 'b'")
        try await a.sandboxes.reconcileOnce()
        let unit = await a.waitForNewUnit(of: tenant, except: [])
        #expect(await a.injected("ANTHROPIC_API_KEY", unit: unit) == key)
        let placement = try await a.store.read { tx in try tx.placement(tenantID: try tx.tenant(named: tenant).id) }
        #expect(placement?.host == "a" && (placement?.epoch ?? 0) > 1, "placed on a under a new epoch (fencing b's)")
        let injections = try await a.audit(tenant: tenant).filter { $0.event.action == AuditAction.keyInject.rawValue }
        #expect(injections.map(\.event.unit) == [first.unit, unit], "each host's injection is its own audited record")
    }
}
