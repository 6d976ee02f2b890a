import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

@testable import KeyholdOrchestration

/// A plan's warm pool against an in-memory systemd: units started ahead hold nothing of a tenant until a start takes
/// one, the pool is refilled, and a restarted daemon stops the units the previous one left (their pipes died with it).
@Suite(.offCooperativePool, .timeLimit(.minutes(1))) struct InProcessWarmPoolTests {
    /// The repository's plans, with a warm pool of `size` on BYOK.
    static func plans(size: Int) throws -> PlanCatalog {
        var plans = try PlanCatalog.load(directory: BuildProducts.plansDirectory).plans
        let index = try #require(plans.firstIndex { $0.id == "byok" })
        plans[index].sandbox.warmPool = WarmPoolPolicy(size: size)
        return PlanCatalog(plans: plans)
    }

    static func warmUnits(_ host: InProcessHost) -> [String] { host.systemd.activeUnits(prefix: WarmPool.unitPrefix) }

    @Test func aStartTakesAWarmUnitWithTheTenantsKeyStateAndArgvAndThePoolIsRefilled() async throws {
        let host = try InProcessHost(plans: try Self.plans(size: 2))
        await host.sandboxes.tendWarmPool()
        let waiting = Self.warmUnits(host)
        #expect(waiting.count == 2, "the pool was filled")
        for unit in waiting {
            #expect(host.namespaces.mounts(unit: unit).filter { $0.hasPrefix("tmpfs(") }.count == 2, "its /tmp is bounded before anyone takes it")
        }

        let tenant = InProcessTenants.name("warm")
        let key = InProcessTenants.canary()
        try await host.tenant(tenant, key: key, agent: ["/bin/sh", "-c", "exec sleep infinity"])
        let sandbox = try await host.sandboxes.start(tenant: tenant, actor: "test")
        #expect(waiting.contains(sandbox.unit), "the start took a waiting unit (\(sandbox.unit))")
        let payload = try #require(await host.systemd.payload(of: sandbox.unit))
        #expect(payload.environment.first { $0.name == "ANTHROPIC_API_KEY" }?.value == key)
        #expect(payload.arguments == ["/bin/sh", "-c", "exec sleep infinity"], "a warm unit gets its agent's argv with its key")
        #expect(host.namespaces.mounts(unit: sandbox.unit).contains { $0.hasSuffix("keyhold-agents/\(tenant) -> /var/lib/keyhold-agents/\(tenant)") })
        let inject = try await host.audit(tenant: tenant).first { $0.event.action == AuditAction.keyInject.rawValue }
        #expect(inject?.event.unit == sandbox.unit)
        // The other unit still holds nothing of anyone.
        let other = try #require(waiting.first { $0 != sandbox.unit })
        #expect(host.systemd.unit(other)?.payload == nil)

        await host.sandboxes.tendWarmPool()
        #expect(Self.warmUnits(host).count == 3, "refilled: two waiting, one serving the tenant")
    }

    @Test func aRestartedDaemonStopsTheWarmUnitsThePreviousOneLeft() async throws {
        let host = try InProcessHost(plans: try Self.plans(size: 2))
        await host.sandboxes.tendWarmPool()
        let left = Self.warmUnits(host)
        #expect(left.count == 2)
        try await host.restart()
        await host.sandboxes.stopLeftoverWarmUnits()
        #expect(Self.warmUnits(host).isEmpty, "their pipes died with the old daemon: they can serve no one")
        await host.sandboxes.tendWarmPool()
        let fresh = Self.warmUnits(host)
        #expect(fresh.count == 2 && Set(fresh).isDisjoint(with: left), "the new daemon fills its own pool")
    }

    /// Two installations on one systemd (a demo beside the service, one test beside another): a daemon's start stops
    /// the warm units its own installation left, never the other's, which are waiting for their tenants.
    @Test func aDaemonLeavesAnotherInstallationsWarmUnitsAlone() async throws {
        let service = try InProcessHost(plans: try Self.plans(size: 2))
        let demo = try InProcessHost(plans: try Self.plans(size: 1), systemd: service.systemd)
        #expect(service.configuration.installationTag != demo.configuration.installationTag)
        await service.sandboxes.tendWarmPool()
        await demo.sandboxes.tendWarmPool()
        let serviceUnits = Set(service.sandboxes.warmPool.names)
        #expect(serviceUnits.count == 2 && Self.warmUnits(service).count == 3)

        try await demo.restart()
        await demo.sandboxes.stopLeftoverWarmUnits()
        #expect(Set(Self.warmUnits(service)) == serviceUnits, "the demo stopped its own leftover unit only")
        let tenant = InProcessTenants.name("warm")
        try await service.tenant(tenant, key: InProcessTenants.canary(), agent: ["/bin/sh", "-c", "exec sleep infinity"])
        let sandbox = try await service.sandboxes.start(tenant: tenant, actor: "test")
        #expect(serviceUnits.contains(sandbox.unit), "the service's waiting unit still serves its next tenant")
    }
}
