import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Hosts of a fleet in process: one PostgreSQL database, a systemd in memory each. Starts go to the least loaded
/// host, and two hosts racing to start one tenant run it once; a start pinned to another host runs there and only
/// there; a host that stops renewing its lease loses its tenants to another, which starts them with a fresh, audited
/// injection; a drain moves a tenant blue/green, with an agent active at every moment.
@Suite(.offCooperativePool, .timeLimit(.minutes(1))) struct InProcessFleetTests {
    static func fleet() throws -> (a: InProcessHost, b: InProcessHost) {
        let a = try InProcessHost(fleet: ("a", nil))
        let b = try InProcessHost(fleet: ("b", a))
        return (a, b)
    }

    /// Runs the hosts' reconcilers (placements claimed, moved sandboxes stopped, crashes restarted) while `body` runs.
    static func reconciling<T: Sendable>(_ hosts: InProcessHost..., body: () async throws -> T) async throws -> T {
        let reconcilers = hosts.map { host in Task { try await SandboxReconciler(sandboxes: host.sandboxes).run() } }
        defer { reconcilers.forEach { $0.cancel() } }
        return try await body()
    }

    static func outcome<T: Sendable>(_ body: () async throws -> T) async -> Result<T, any Error> {
        do { return .success(try await body()) } catch { return .failure(error) }
    }

    @Test func startsGoToTheLeastLoadedHostAndTwoHostsRacingRunTheTenantOnce() async throws {
        let a = try InProcessHost(fleet: ("a", nil))
        let (b, c) = (try InProcessHost(fleet: ("b", a)), try InProcessHost(fleet: ("c", a)))
        let tenants = (0..<4).map { InProcessTenants.name("place\($0)") }
        for tenant in tenants { try await a.tenant(tenant, key: InProcessTenants.canary()) }
        try await Self.reconciling(a, b, c) {
            // Three starts sent to a's API land one on each host: the least loaded first.
            var placedOn: [String] = []
            for tenant in tenants.prefix(3) {
                let sandbox = try await a.sandboxes.start(tenant: tenant, actor: "test")
                placedOn.append(sandbox.host ?? "")
                let host = [a, b, c].first { $0.configuration.hostID == sandbox.host }
                #expect(
                    host?.activeUnits(tenant: tenant) == [sandbox.unit],
                    "\(tenant) runs on \(sandbox.host ?? "-"): \([a, b, c].map { ($0.configuration.hostID ?? "", $0.systemd.history.filter { $0.unit.contains(tenant) }.map { "\($0.unit) \($0.activeState)" }) })"
                )
            }
            #expect(Set(placedOn) == ["a", "b", "c"], "\(placedOn)")

            // b and c asked at once to start one tenant: one runs it, the other refuses.
            let racer = tenants[3]
            async let onB = Self.outcome { try await b.sandboxes.start(tenant: racer, actor: "test") }
            async let onC = Self.outcome { try await c.sandboxes.start(tenant: racer, actor: "test") }
            let outcomes = await [onB, onC]
            #expect(outcomes.filter { (try? $0.get()) != nil }.count == 1, "\(outcomes)")
            for case .failure(let error) in outcomes {
                #expect((error as? KeyholdError)?.code == .conflict, "the loser is told why: \(error)")
            }
            #expect([a, b, c].flatMap { $0.activeUnits(tenant: racer) }.count == 1, "the tenant runs once")
        }
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

    @Test func aDrainMovesATenantBlueGreenWithAnAgentActiveAtEveryMoment() async throws {
        let (a, b) = try Self.fleet()
        let tenant = InProcessTenants.name("drain")
        try await a.tenant(tenant, key: InProcessTenants.canary())
        let old = try await b.sandboxes.start(tenant: tenant, actor: "test", host: "b")
        let removed = b.systemd.unitEvents(prefixes: [old.unit])
        let drain = try await Self.reconciling(a, b) {
            let drain = try await a.plane.drainHost("b", actor: "test")
            _ = await a.waitForNewUnit(of: tenant, except: [])
            for await event in removed where event == .removed(unit: old.unit) { break }
            return drain
        }
        #expect(drain.moved == [tenant])
        #expect(b.activeUnits(tenant: tenant).isEmpty && a.activeUnits(tenant: tenant).count == 1, "the tenant now runs on a only")

        // Both hosts' systemds, merged in time: from the first start on, some agent of the tenant is active.
        let changes = (a.systemd.history + b.systemd.history).filter { $0.unit.hasPrefix("keyhold-\(tenant)-") }.sorted { $0.at < $1.at }
        var active: Set<String> = []
        var gaps: [String] = []
        for change in changes {
            if change.activeState == "active" { active.insert(change.unit) } else { active.remove(change.unit) }
            if active.isEmpty && change.activeState != "activating" { gaps.append("\(change.unit) \(change.activeState)") }
        }
        #expect(gaps.isEmpty, "no moment without an agent: \(changes.map { "\($0.unit) \($0.activeState)" })")

        // A draining host takes no new tenant until it is activated again.
        let other = InProcessTenants.name("drain-other")
        try await a.tenant(other, key: InProcessTenants.canary())
        await #expect(throws: KeyholdError.self) { try await b.sandboxes.start(tenant: other, actor: "test", host: "b") }
        try await a.plane.activateHost("b", actor: "test")
        #expect(try await b.sandboxes.start(tenant: other, actor: "test", host: "b").host == "b")
        let actions = try await a.plane.auditRecords(tenant: nil, action: nil, since: nil, limit: nil).map(\.event.action)
        #expect(actions.contains(AuditAction.hostDrain.rawValue) && actions.contains(AuditAction.hostActivate.rawValue))
    }
}
