import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing

@testable import KeyholdOrchestration

/// Starts and stops against an in-memory systemd: what the launcher receives, what is audited, and what a failing
/// or hanging systemd leaves behind. Milliseconds each; no systemd, no root namespaces.
@Suite(.offCooperativePool, .timeLimit(.minutes(1))) struct InProcessStartTests {
    @Test func aStartHandsTheKeyToTheLauncherAndAuditsItsInvocation() async throws {
        let host = try InProcessHost()
        let (tenant, key, unit) = try await host.runningTenant("start")

        #expect(host.activeUnits(tenant: tenant) == [unit])
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: unit) == key, "the launcher read the tenant's key from its pipe")
        #expect(await host.injected("HTTPS_PROXY", unit: unit) == "http://127.0.0.1:3128")
        let records = try await host.audit(tenant: tenant)
        let inject = try #require(records.first { $0.event.action == AuditAction.keyInject.rawValue })
        let started = try #require(host.systemd.unit(unit))
        #expect(inject.event.unit == unit && inject.event.invocationID == started.invocationID, "the record names this invocation")
        #expect(!records.contains { "\($0)".contains(key) }, "no audit record holds the key")
        // Its way out and its bounded /tmp were made before the key went in.
        #expect(host.namespaces.port(unit: unit, inside: LoopbackAddress(ip: "127.0.0.1", port: 3128)) != nil)
        #expect(host.namespaces.mounts(unit: unit).filter { $0.hasPrefix("tmpfs(") }.count == 2)

        let status = try await host.sandboxes.status(tenant: tenant)
        #expect(status.map(\.state) == ["running"] && status.first?.systemdState == "active/running")
        let stopped = try await host.sandboxes.stop(tenant: tenant, actor: "test")
        #expect(stopped.map(\.unit) == [unit])
        #expect(host.systemd.unit(unit) == nil, "the stopped unit was unloaded")
        #expect(try await host.sandboxes.status(tenant: tenant).isEmpty)
    }

    @Test func aStartCallThatFailsLeavesNoUnitAndNoKey() async throws {
        let host = try InProcessHost()
        let tenant = InProcessTenants.name("fail")
        try await host.tenant(tenant, key: InProcessTenants.canary())
        host.systemd.failNext(.start)
        await #expect(throws: InMemorySystemd.CommandedFailure.self) { try await host.sandboxes.start(tenant: tenant, actor: "test") }
        #expect(host.systemd.units.isEmpty)
        let records = try await host.audit(tenant: tenant)
        #expect(records.filter { $0.event.action == AuditAction.sandboxStart.rawValue }.map(\.event.outcome) == [AuditOutcome.failed.rawValue])
        #expect(records.allSatisfy { $0.event.action != AuditAction.keyInject.rawValue })
        // The next start goes ahead: nothing was left half-done.
        let sandbox = try await host.sandboxes.start(tenant: tenant, actor: "test")
        #expect(host.activeUnits(tenant: tenant) == [sandbox.unit])
    }

    @Test func aStartWhoseAuditRecordCannotBeWrittenHandsTheLauncherNoKey() async throws {
        let host = try InProcessHost()
        let tenant = InProcessTenants.name("noaudit")
        try await host.tenant(tenant, key: InProcessTenants.canary())
        // A fenced host writes no key.inject record: the unit starts, and its pipe must close empty.
        _ = try #require(host.sandboxes.lease.fenceIfStale(now: .now + .seconds(3600)))
        await #expect(throws: KeyholdError.self) { try await host.sandboxes.start(tenant: tenant, actor: "test") }
        let unit = try #require(host.systemd.startedUnits.first, "the unit was started before the refusal")
        #expect(await host.systemd.launcherReads(of: unit).map { $0 == nil } == [true], "its launcher's pipe closed empty")
        #expect(try await host.audit(tenant: tenant).allSatisfy { $0.event.action != AuditAction.keyInject.rawValue })
        #expect(host.activeUnits(tenant: tenant).isEmpty, "the unit was stopped")
    }

    @Test func aStatusReadThatFailsShowsAsNotLoadedAndTheNextOneReadsAgain() async throws {
        let host = try InProcessHost()
        let (tenant, _, unit) = try await host.runningTenant("status")
        host.systemd.failNext(.status)
        #expect(try await host.sandboxes.status(tenant: tenant).first?.systemdState == "not loaded")
        #expect(try await host.sandboxes.status(tenant: tenant).first?.systemdState == "active/running")
        #expect(host.activeUnits(tenant: tenant) == [unit])
    }

    @Test func aStartJobThatNeverFinishesTimesOutAndItsUnitIsStopped() async throws {
        let host = try InProcessHost { $0.jobTimeout = .milliseconds(300) }
        let tenant = InProcessTenants.name("hang")
        try await host.tenant(tenant, key: InProcessTenants.canary())
        host.systemd.holdStarts(of: "keyhold-\(tenant)-")
        await #expect(throws: SystemdError.self) { try await host.sandboxes.start(tenant: tenant, actor: "test") }
        #expect(host.activeUnits(tenant: tenant).isEmpty, "the hung unit was stopped")
        let last = try await host.audit(tenant: tenant).last
        #expect(last?.event.action == AuditAction.sandboxStart.rawValue && last?.event.outcome == AuditOutcome.failed.rawValue)
    }

    @Test func aLauncherWhosePipeClosesEmptyExitsAndTheCrashIsRestartedWithAFreshInjection() async throws {
        let host = try InProcessHost()
        let (tenant, key, unit) = try await host.runningTenant("crash")
        host.systemd.crash(unit: unit, status: 3)
        try await host.sandboxes.reconcileOnce()
        let restarted = await host.waitForNewUnit(of: tenant, except: [unit])
        #expect(await host.injected("ANTHROPIC_API_KEY", unit: restarted) == key)
        let actions = try await host.audit(tenant: tenant).map(\.event.action)
        #expect(actions.filter { $0 == AuditAction.keyInject.rawValue }.count == 2, "each start is its own audited injection")
        #expect(actions.contains(AuditAction.sandboxCrash.rawValue))
        #expect(host.systemd.unit(unit) == nil, "the crashed unit was reset")
    }

    @Test func anAgentThatKeepsCrashingIsReportedFailedAfterItsRestarts() async throws {
        let host = try InProcessHost { $0.maximumRestarts = 2 }
        let (tenant, _, first) = try await host.runningTenant("flap")
        var unit = first
        var seen: Set<String> = [unit]
        for _ in 0..<2 {
            host.systemd.crash(unit: unit)
            try await host.sandboxes.reconcileOnce()
            unit = await host.waitForNewUnit(of: tenant, except: seen)
            seen.insert(unit)
        }
        host.systemd.crash(unit: unit)
        try await host.sandboxes.reconcileOnce()
        #expect(host.activeUnits(tenant: tenant).isEmpty)
        let actions = try await host.audit(tenant: tenant).map(\.event.action)
        #expect(actions.last == AuditAction.sandboxFail.rawValue, "\(actions)")
        #expect(actions.filter { $0 == AuditAction.keyInject.rawValue }.count == 3)
    }
}
