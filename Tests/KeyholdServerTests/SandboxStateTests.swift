import Foundation
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The agent's own persistent state (`$STATE_DIRECTORY`) and what else a sandbox may see of the host, under a real
/// systemd.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxStateTests {
    /// Appends a line per run to its state, reports how many runs it remembers, then waits.
    static let countingAgent =
        #"/bin/sh -c 'echo run >> "$STATE_DIRECTORY/runs"; echo "runs=$(wc -l < "$STATE_DIRECTORY/runs") home=$HOME"; exec sleep infinity'"#

    /// Where the tenant's state lives on this host (systemd keeps DynamicUser state under /var/lib/private).
    static func hostPath(_ tenant: String) -> String { "/var/lib/private/keyhold-agents/\(tenant)" }

    @Test func stateSurvivesCrashDaemonRestartAndRotationAndIsDeletedWithTheTenant() throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--readiness-window-ms", "300"])
        let tenant = SandboxHarness.tenantName("st")
        try sandboxes.tenant(tenant, agent: Self.countingAgent)
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try #require(try sandboxes.start(tenant).status == 0)
        let first = try sandboxes.waitForLog(tenant, containing: "runs=")
        #expect(first.contains("runs=1 home=/var/lib/keyhold-agents/\(tenant)"), "\(first)")

        // A crash: the reconciler restarts the agent, which finds its state.
        let unit = try #require(try sandboxes.activeUnits(tenant: tenant).keys.first)
        try sandboxes.manager.killUnit(name: unit, signal: SIGKILL)
        _ = try sandboxes.waitForLog(tenant, containing: "runs=2")

        // A daemon restart leaves the agent and its state alone.
        sandboxes.keyhold.stopDaemon()
        try sandboxes.restartDaemon()
        let lines = try String(contentsOfFile: Self.hostPath(tenant) + "/runs", encoding: .utf8)
        #expect(lines == "run\nrun\n")

        // A rotation: the new agent finds the state the old one wrote (both share it during the overlap).
        let rotate = try sandboxes.keyhold.cli(["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array(SandboxHarness.canary().utf8))
        #expect(rotate.status == 0, "\(rotate.stderr)")
        _ = try sandboxes.waitForLog(tenant, containing: "runs=3")

        // Another tenant sees none of it.
        let snoop = SandboxHarness.tenantName("sn")
        let script =
            #"echo "snoop own=$(ls /var/lib/keyhold-agents) private=$(ls /var/lib/private/keyhold-agents 2>&1 | tr " " _) read=$(cat /var/lib/private/keyhold-agents/\#(tenant)/runs 2>&1 | head -c 40 | tr " " _)"; exec sleep infinity"#
        try sandboxes.tenant(snoop, agent: "/bin/sh -c '\(script)'")
        try sandboxes.setKey(snoop, SandboxHarness.canary())
        try #require(try sandboxes.start(snoop).status == 0)
        let report = try sandboxes.waitForLog(snoop, containing: "snoop ")
        #expect(report.contains("own=\(snoop) "), "\(report)")
        #expect(!report.contains("read=run"), "\(report)")
        #expect(report.contains("private=\(snoop) "), "its private state parent holds only its own: \(report)")

        // Deleting the tenant deletes its state, audited.
        let delete = try sandboxes.keyhold.cli(["tenant", "delete", tenant, "--yes"])
        #expect(delete.status == 0, "\(delete.stderr)")
        #expect(!FileManager.default.fileExists(atPath: Self.hostPath(tenant)))
        // (A deleted tenant is no longer a name to list by: its record is found by action.)
        let deletions = SandboxHarness.jsonObjects(try sandboxes.keyhold.cli(["audit", "list", "--action", "tenant.delete", "--json"]).stdout)
        let deletion = deletions.compactMap { $0["event"] as? [String: Any] }.first { $0["tenant"] as? String == tenant }
        #expect((deletion?["details"] as? [String: String])?["deleted_state_bytes"] != nil, "\(deletions)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", snoop])
    }

    @Test func stateOverThePlansLimitIsFoundWhileRunningAndMountedReadOnly() throws {
        let keyhold = try KeyholdHarness()
        let plans = keyhold.root + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        let byok = try String(contentsOfFile: BuildProducts.plansDirectory + "/byok.yaml", encoding: .utf8)
            .replacingOccurrences(of: "state_max: 1G", with: "state_max: 1M")
        try #require(byok.contains("state_max: 1M"))
        try byok.write(toFile: plans + "/byok.yaml", atomically: true, encoding: .utf8)
        let sandboxes = try SandboxHarness(extraArguments: ["--plans", plans, "--state-check-interval-ms", "200"])
        let tenant = SandboxHarness.tenantName("big")
        let agent =
            #"/bin/sh -c 'if dd if=/dev/zero of="$STATE_DIRECTORY/blob.$(date +%s%N)" bs=1M count=2 2>/dev/null; then w=ok; else w=refused; fi; echo "write=$w"; exec sleep infinity'"#
        try sandboxes.tenant(tenant, agent: agent)
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try #require(try sandboxes.start(tenant).status == 0)
        #expect(try sandboxes.waitForLog(tenant, containing: "write=").hasSuffix("write=ok"))
        // The reconciler measures the running agent's state, finds it over the limit and restarts it read-only.
        _ = try sandboxes.waitForLog(tenant, containing: "write=refused")
        let stops = try sandboxes.keyhold.cli(["audit", "list", "--action", "sandbox.stop", "--tenant", tenant, "--json"]).stdout
        #expect(stops.contains("state over the plan's state_max"), "\(stops)")
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--action", "sandbox.state-limit", "--tenant", tenant, "--json"]).stdout
        #expect(audit.contains("read-only"), "\(audit)")
        let status = try sandboxes.keyhold.cli(["sandbox", "status", tenant]).stdout
        #expect(status.contains("of 1.0 MiB"), "\(status)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
    }

    @Test func bothPlansScoreAtMostHalfAPointWithSystemdAnalyze() throws {
        let sandboxes = try SandboxHarness()
        for plan in ["byok", "managed"] {
            let tenant = SandboxHarness.tenantName("sc")
            try sandboxes.tenant(tenant, plan: plan, agent: "/bin/sleep infinity")
            if plan == "byok" { try sandboxes.setKey(tenant, SandboxHarness.canary()) }
            try #require(try sandboxes.start(tenant).status == 0)
            let unit = try #require(try sandboxes.activeUnits(tenant: tenant).keys.first)
            let command = ["systemd-analyze", "security", "--no-pager", unit]
            let result: ProcessResult
            switch sandboxes.systemd {
            case .host: result = try ProcessRunner.run("/usr/bin/systemd-analyze", Array(command.dropFirst()))
            case .privateInstance(let instance):
                result = try ProcessRunner.run("/usr/bin/nsenter", ["-t", String(instance.systemdPID), "-m", "-p", "--"] + command)
            }
            let line = result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") } ?? ""
            let score = line.split(separator: ":").last.flatMap { Double($0.split(separator: " ").first ?? "") }
            let measured = try #require(score, "\(plan): \(result.stdout.suffix(400)) \(result.stderr)")
            #expect(measured <= 0.5, "\(plan): \(line)")
            _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        }
    }
}
