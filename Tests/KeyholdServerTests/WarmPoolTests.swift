import Foundation
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// A plan's warm pool (`warm_pool:`) under a real systemd: units started ahead, each handed to one tenant's start
/// with its key, state and way out, never to a second; expired and refilled in the background.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct WarmPoolTests {
    /// Reports its key's hash, its state, what it sees of /var/lib and its hosts file, then waits.
    static let agent = #"""
        /bin/sh -c 'echo run >> "$STATE_DIRECTORY/runs"; if touch /var/lib/planted 2>/dev/null; then v=writable; else v=refused; fi; echo "report runs=$(wc -l < "$STATE_DIRECTORY/runs") home=$HOME state=$STATE_DIRECTORY key=$(printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -c1-64) varlib=$(ls /var/lib/keyhold-agents | tr "\n" ,) varlib-write=$v hosts=$(grep -c api.anthropic.com /etc/hosts 2>&1 | tr " " _) user=$(id -u)"; exec sleep infinity'
        """#

    /// A plans directory whose `byok` plan keeps a warm pool.
    static func plans(in keyhold: KeyholdHarness, pool: String) throws -> String {
        let plans = keyhold.root + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        let byok = try String(contentsOfFile: BuildProducts.plansDirectory + "/byok.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  state_max: 1G\n", with: "  state_max: 1G\n" + pool)
        try #require(byok.contains("\n" + pool))
        try byok.write(toFile: plans + "/byok.yaml", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: BuildProducts.plansDirectory + "/managed.yaml", toPath: plans + "/managed.yaml")
        return plans
    }

    /// The warm units of the plan that are running (waiting, or handed to a tenant): this installation's only.
    static func activeWarmUnits(_ sandboxes: SandboxHarness, plan: String = "byok") throws -> Set<String> {
        let tag = SandboxConfiguration.installationTag(stateDirectory: sandboxes.keyhold.stateDirectory)
        return Set(
            try sandboxes.manager.listUnits(matching: SandboxConfiguration.warmUnitPattern(installationTag: tag, plan: plan)).filter { unit in
                try sandboxes.manager.unitStatus(name: unit)?.activeState == "active"
            })
    }

    /// Polls (bounded: 20 s) until `condition` holds of the plan's active warm units.
    static func waitForWarmUnits(
        _ sandboxes: SandboxHarness, _ description: String, plan: String = "byok", _ condition: (Set<String>) -> Bool
    ) throws -> Set<String> {
        let deadline = Date().addingTimeInterval(20)
        var units: Set<String> = []
        while Date() < deadline {
            units = try activeWarmUnits(sandboxes, plan: plan)
            if condition(units) { return units }
            usleep(50_000)
        }
        Issue.record("the warm units never became \(description): \(units)")
        return units
    }

    static func startedUnit(_ result: ProcessResult) throws -> String {
        try #require(result.status == 0, "\(result.stderr)")
        return try #require(SandboxHarness.jsonObjects(result.stdout).first?["unit"] as? String, "\(result.stdout)")
    }

    @Test func aStartTakesAWaitingUnitForItsTenantOnlyAndThePoolRefills() throws {
        let keyhold = try KeyholdHarness()
        let plans = try Self.plans(in: keyhold, pool: "  warm_pool: 2\n")
        let sandboxes = try SandboxHarness(extraArguments: ["--plans", plans])
        let waiting = try Self.waitForWarmUnits(sandboxes, "two") { $0.count == 2 }
        // Waiting units hold no tenant's anything: no state, no key, keyhold-exec waiting on its pipe.
        for unit in waiting {
            let show = try sandboxes.systemctlShow(unit)
            #expect(show.contains("keyhold-exec --pooled"), "\(show)")
            #expect(!show.contains("StateDirectory=keyhold-agents"), "\(unit)")
        }

        let tenant = SandboxHarness.tenantName("wp")
        let canary = SandboxHarness.canary()
        try sandboxes.tenant(tenant, agent: Self.agent)
        try sandboxes.setKey(tenant, canary)
        let unit = try Self.startedUnit(try sandboxes.start(tenant))
        #expect(waiting.contains(unit), "the start did not take a waiting unit: \(unit), waiting \(waiting)")
        let report = try sandboxes.waitForLog(tenant, containing: "report ")
        #expect(report.contains("runs=1 home=/var/lib/keyhold-agents/\(tenant) state=/var/lib/keyhold-agents/\(tenant) "), "\(report)")
        #expect(report.contains("key=\(try SandboxHarness.sha256(canary))"), "\(report)")
        // keyhold-mount attached the state (systemd's slower BindMountUnit is the fallback).
        #expect(!sandboxes.keyhold.daemonLog.contains("BindMountUnit instead"), "\(sandboxes.keyhold.daemonLog.suffix(2000))")
        #expect(report.contains("varlib=\(tenant), varlib-write=refused hosts=1 "), "\(report)")
        // The key travelled through the pipe only: not in the unit's properties, not in the journal.
        #expect(!(try sandboxes.systemctlShow(unit)).contains(canary))
        #expect(!(try sandboxes.keyhold.cli(["sandbox", "logs", tenant, "--lines", "200"]).stdout).contains(canary))
        let audit = try sandboxes.waitForAudit("the injection into \(unit)") { $0.contains("\"key.inject\"") && $0.contains(unit) }
        #expect(!audit.contains(canary))

        // The pool refills in the background, with new units: the taken one never comes back.
        let refilled = try Self.waitForWarmUnits(sandboxes, "refilled") { $0.count == 3 && $0.contains(unit) }
        #expect(refilled.subtracting([unit]).count == 2)

        // Stopped with its tenant, for good; the next start takes another unit, and the state is still there.
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)
        #expect(try sandboxes.manager.unitStatus(name: unit)?.activeState != "active")
        let second = try Self.startedUnit(try sandboxes.start(tenant))
        #expect(second != unit)
        #expect(try sandboxes.waitForLog(tenant, containing: "runs=2").contains("report runs=2"))

        // Another tenant gets a unit of its own and sees none of the first one's state.
        let other = SandboxHarness.tenantName("wq")
        try sandboxes.tenant(other, agent: Self.agent)
        try sandboxes.setKey(other, SandboxHarness.canary())
        let third = try Self.startedUnit(try sandboxes.start(other))
        #expect(![unit, second].contains(third))
        let otherReport = try sandboxes.waitForLog(other, containing: "report ")
        #expect(otherReport.contains("runs=1 ") && otherReport.contains("varlib=\(other), "), "\(otherReport)")

        // The state both warm units wrote stays on the host, in the tenant's private directory.
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", other]).status == 0)
        let hostState = "/var/lib/private/keyhold-agents/\(tenant)/runs"
        #expect(try String(contentsOfFile: hostState, encoding: .utf8) == "run\nrun\n")
    }

    @Test func unitsThatWaitedTooLongAreReplacedAndThePoolKeepsToTheHostsCapacity() throws {
        let keyhold = try KeyholdHarness()
        let plans = try Self.plans(in: keyhold, pool: "  warm_pool: 2\n  warm_pool_max_wait: 1s\n")
        let sandboxes = try SandboxHarness(extraArguments: ["--plans", plans, "--max-sandboxes", "2"])
        let first = try Self.waitForWarmUnits(sandboxes, "two") { $0.count == 2 }
        // Each unit is stopped once it waited a second, and replaced.
        let replaced = try Self.waitForWarmUnits(sandboxes, "replaced") { $0.count == 2 && $0.isDisjoint(with: first) }
        #expect(replaced.isDisjoint(with: first))
        for unit in first { #expect(try sandboxes.manager.unitStatus(name: unit)?.activeState != "active") }

        // A running tenant takes one of the host's two places: one unit waits, not two.
        let tenant = SandboxHarness.tenantName("wc")
        try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        let unit = try Self.startedUnit(try sandboxes.start(tenant))
        let metricsSettled = try Self.waitForWarmUnits(sandboxes, "one besides the tenant's, several times over") { units in
            units.contains(unit) && units.count == 2
        }
        #expect(metricsSettled.count == 2)
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)

        // A daemon that stops takes its waiting units with it; the next one starts fresh ones.
        sandboxes.keyhold.stopDaemon()
        let afterStop = try Self.activeWarmUnits(sandboxes)
        #expect(afterStop.isEmpty, "\(afterStop)")
        try sandboxes.restartDaemon()
        _ = try Self.waitForWarmUnits(sandboxes, "two again") { $0.count == 2 }
    }
}
