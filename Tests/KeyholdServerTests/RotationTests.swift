import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Key rotation against a real systemd: blue/green with no downtime, failure keeps the old agent, crash safety.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct RotationTests {
    /// Reports a hash of its key, refuses keys containing "-bad-" (never in a canary: hex after its prefix) by exiting at start.
    static let agent =
        #"/bin/sh -c 'case "$ANTHROPIC_API_KEY" in *-bad-*) echo "refusing this key"; exit 2;; esac; echo "hash=$(printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -c1-64)"; exec sleep infinity'"#

    static func runningTenant(_ sandboxes: SandboxHarness, prefix: String) throws -> (tenant: String, key: String) {
        let tenant = SandboxHarness.tenantName(prefix)
        let key = SandboxHarness.canary()
        try sandboxes.tenant(tenant, agent: agent)
        try sandboxes.setKey(tenant, key)
        try #require(try sandboxes.start(tenant).status == 0)
        _ = try sandboxes.waitForLog(tenant, containing: "hash=")
        return (tenant, key)
    }

    @Test func aRotationNeverLeavesTheTenantWithoutARunningAgent() throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--readiness-window-ms", "500"])
        let (tenant, _) = try Self.runningTenant(sandboxes, prefix: "rot")
        let before = try sandboxes.activeUnits(tenant: tenant)
        try #require(before.count == 1)
        let newKey = SandboxHarness.canary()

        // The rotation runs in another process while systemd's signals record every change of the tenant's units.
        let timeline = try UnitTimeline(tenant: tenant)
        let rotation = try sandboxes.keyhold.cli(["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array(newKey.utf8))
        #expect(rotation.status == 0, "\(rotation.stderr)")
        let old = try #require(before.keys.first)
        #expect(timeline.waitUntilInactive(old), "systemd signalled the old unit's stop")
        let counts = timeline.activeCounts(from: Set(before.keys))
        #expect(counts.allSatisfy { $0 > 0 }, "after every change at least one agent was active: \(counts)")
        #expect(counts.contains(2), "old and new ran side by side: \(counts)")

        let after = try sandboxes.activeUnits(tenant: tenant)
        #expect(after.count == 1)
        #expect(Set(after.keys).isDisjoint(with: before.keys), "the old unit is gone, a new one runs")
        let line = try sandboxes.waitForLog(tenant, containing: "hash=")
        #expect(line.hasSuffix("hash=" + (try SandboxHarness.sha256(newKey))), "the new agent holds the new key")

        let keys = try sandboxes.keyhold.cli(["key", "list", tenant]).stdout
        #expect(keys.contains(" 2        active") && keys.contains(" 1        retired"), "\(keys)")
        // The old unit stopped only after the new one was ready: new injection, then the stop, then the rotation record.
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant]).stdout.split(separator: "\n").map(String.init)
        let inject2 = try #require(audit.lastIndex { $0.contains("key.inject") && $0.contains(" 2 ") })
        let stop = try #require(audit.lastIndex { $0.contains("sandbox.stop") })
        let rotated = try #require(audit.lastIndex { $0.contains("key.rotate") && $0.contains(" ok ") })
        #expect(inject2 < stop && stop < rotated)
        #expect(audit.contains { $0.contains("key.retire") })
        #expect(try sandboxes.keyhold.cli(["audit", "verify"]).status == 0)
    }

    @Test func aNewKeyWhoseAgentFailsLeavesTheOldAgentRunning() throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--readiness-window-ms", "1000"])
        let (tenant, _) = try Self.runningTenant(sandboxes, prefix: "rotbad")
        let before = try sandboxes.activeUnits(tenant: tenant)
        let rotate = try sandboxes.keyhold.cli(
            ["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array(("sk-ant-bad-" + UUID().uuidString).utf8)
        )
        #expect(rotate.status != 0)
        #expect(rotate.stderr.contains("did not stay up") && rotate.stderr.contains("the old agent keeps running"), "\(rotate.stderr)")
        #expect(try sandboxes.activeUnits(tenant: tenant) == before, "the same unit, the same invocation")
        let keys = try sandboxes.keyhold.cli(["key", "list", tenant]).stdout
        #expect(keys.contains(" 2        failed") && keys.contains(" 1        active"), "\(keys)")
        let second = try sandboxes.keyhold.cli(["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array(SandboxHarness.canary().utf8))
        #expect(second.status == 0, "a later rotation works: \(second.stderr)")
    }

    @Test(arguments: ["rotation.before-new-unit", "rotation.new-unit-starting", "rotation.after-new-ready", "rotation.stopping-old"])
    func aDaemonKilledAtAnyStepConverges(fault: String) throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--readiness-window-ms", "300"])
        let (tenant, _) = try Self.runningTenant(sandboxes, prefix: "crash")
        sandboxes.keyhold.stopDaemon()
        try sandboxes.restartDaemon(environment: ["KEYHOLD_FAULT": fault])
        let rotate = try sandboxes.keyhold.cli(["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array(SandboxHarness.canary().utf8))
        #expect(rotate.status != 0, "the daemon died mid-rotation")
        #expect(sandboxes.keyhold.waitForDaemonExit())
        #expect(sandboxes.keyhold.daemonLog.contains("SIGKILL at \(fault)"))

        try sandboxes.restartDaemon()
        let audit = try sandboxes.waitForAudit("the interrupted rotation resolved") {
            $0.contains("\"completed-after-restart\"") || $0.contains("rolled back\"")
        }
        let rolledForward = ["rotation.after-new-ready", "rotation.stopping-old"].contains(fault)
        #expect(audit.contains(rolledForward ? "completed-after-restart" : "during the rotation"), "\(fault)")

        // Exactly one agent, on the active version, and no other unit of this tenant.
        let units = try sandboxes.activeUnits(tenant: tenant)
        #expect(units.count == 1, "\(fault): \(units)")
        #expect(try sandboxes.loadedUnits(tenant: tenant).count == 1)
        let active = rolledForward ? "anthropic:2" : "anthropic:1"
        let status = try sandboxes.keyhold.cli(["sandbox", "status", tenant, "--json"]).stdout
        #expect(status.contains(active), "\(fault): \(status)")
        #expect(status.components(separatedBy: "\"unit\"").count == 2, "one live sandbox: \(status)")
        let listed = try #require(SandboxHarness.jsonObjects(try sandboxes.keyhold.cli(["sandbox", "list", "--json"]).stdout).first)
        #expect(listed["host"] as? String == HostOptions.defaultID, "each sandbox names its host: \(listed)")
        let keys = try sandboxes.keyhold.cli(["key", "list", tenant]).stdout
        #expect(keys.contains(" \(rolledForward ? 2 : 1)        active"), "\(fault): \(keys)")
        #expect(try sandboxes.keyhold.cli(["audit", "verify"]).status == 0)
    }

    @Test func badRotationsAreRefusedAndChangeNothing() throws {
        let sandboxes = try SandboxHarness()
        let (tenant, _) = try Self.runningTenant(sandboxes, prefix: "rotin")
        let before = try sandboxes.keyhold.cli(["key", "list", tenant]).stdout
        let cases: [([String], String, String)] = [
            (["key", "rotate", "nobody-here", "anthropic", "--no-validate"], "sk-ant-x", "no tenant named"),
            (["key", "rotate", tenant, "mistral", "--no-validate"], "sk-ant-x", "unknown provider"),
            (["key", "rotate", tenant, "openai", "--no-validate"], "sk-x", "no active openai key"),
            (["key", "rotate", tenant, "anthropic", "--no-validate"], "", "is empty"),
            (["key", "rotate", tenant, "proxy-token"], "", "BYOK plan"),
        ]
        for (arguments, input, message) in cases {
            let result = try sandboxes.keyhold.cli(arguments, input: Array(input.utf8))
            #expect(result.status != 0)
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
        #expect(try sandboxes.keyhold.cli(["key", "list", tenant]).stdout == before)
        let revoke = try sandboxes.keyhold.cli(["key", "revoke", tenant, "anthropic"])
        #expect(revoke.stdout.contains("the tenant's agent is not running"), "revoking the only key stops the agent and says so: \(revoke.stdout)")
        #expect(try sandboxes.activeUnits(tenant: tenant).isEmpty)
        let revoked = try sandboxes.keyhold.cli(["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array("sk-ant-new".utf8))
        #expect(revoked.status != 0 && revoked.stderr.contains("no active anthropic key"))
    }

    @Test func aManagedTenantsProxyTokenRotates() throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--readiness-window-ms", "300"])
        let tenant = SandboxHarness.tenantName("tok")
        try sandboxes.tenant(
            tenant, plan: "managed",
            agent: #"/bin/sh -c 'echo "token=$(printf %s "$KEYHOLD_PROXY_TOKEN" | sha256sum | cut -c1-16)"; exec sleep infinity'"#)
        try #require(try sandboxes.start(tenant).status == 0)
        let first = try sandboxes.waitForLog(tenant, containing: "token=")
        let rotate = try sandboxes.keyhold.cli(["key", "rotate", tenant, "proxy-token"])
        #expect(rotate.status == 0, "\(rotate.stderr)")
        let second = try sandboxes.waitForLog(tenant, containing: "token=")
        #expect(first != second, "the new agent has a new token")
        #expect(try sandboxes.activeUnits(tenant: tenant).count == 1)
    }

    /// An agent whose own process reports a hash of its key, then sends READY=1 on $NOTIFY_SOCKET (as sd_notify does).
    static let notifyAgent = """
        import hashlib, os, socket, time
        print("hash=" + hashlib.sha256(os.environ["ANTHROPIC_API_KEY"].encode()).hexdigest(), flush=True)
        address = os.environ["NOTIFY_SOCKET"]
        if address.startswith("@"):
            address = "\\0" + address[1:]
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", address)
        time.sleep(10**6)
        """

    @Test func aNotifyAgentIsReadyWhenItSaysSo() throws {
        // A long readiness window that a notify agent does not wait for: READY=1 is its readiness.
        let sandboxes = try SandboxHarness(extraArguments: ["--readiness-window-ms", "20000"])
        let tenant = SandboxHarness.tenantName("ntf")
        // Under /opt: a private systemd has its own /tmp, and sandboxes see neither /root nor /var/lib.
        let script = "/opt/keyhold-tests/notify-agent-\(tenant).py"
        try FileManager.default.createDirectory(atPath: "/opt/keyhold-tests", withIntermediateDirectories: true)
        try Self.notifyAgent.write(toFile: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: script) }
        let created = try sandboxes.keyhold.cli([
            "tenant", "create", tenant, "--plan", "byok", "--agent-notify", "--agent",
            "/usr/bin/python3 \(script)",
        ])
        try #require(created.status == 0, "\(created.stderr)")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        let start = try sandboxes.start(tenant)
        let logs = start.status == 0 ? "" : try sandboxes.keyhold.cli(["sandbox", "logs", tenant]).output
        try #require(start.status == 0, "the start job completed once the agent sent READY=1: \(start.stderr) \(logs)")
        let newKey = SandboxHarness.canary()
        let began = Date()
        let rotate = try sandboxes.keyhold.cli(["key", "rotate", tenant, "anthropic", "--no-validate"], input: Array(newKey.utf8))
        #expect(rotate.status == 0, "\(rotate.stderr)")
        #expect(Date().timeIntervalSince(began) < 15, "the rotation did not wait out the 20 s window")
        let line = try sandboxes.waitForLog(tenant, containing: "hash=")
        #expect(line.hasSuffix("hash=" + (try SandboxHarness.sha256(newKey))))
        #expect(try sandboxes.activeUnits(tenant: tenant).count == 1)
    }
}
