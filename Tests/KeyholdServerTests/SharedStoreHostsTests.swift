import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Two daemons, two hosts, one store and (on this machine) one systemd: each host manages only the sandboxes it
/// runs: stopping, restarting or starting again a sandbox another host runs is refused with that host's name.
@Suite(.offCooperativePool, .serialized)
struct SharedStoreHostsTests {
    @Test func aHostLeavesAnotherHostsSandboxesAloneAndNamesTheirHost() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("fleet")
        try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        let started = try sandboxes.start(tenant)
        try #require(started.status == 0, "\(started.stderr)")
        let invocation = try #require(SandboxHarness.jsonObjects(started.stdout).first?["invocation_id"] as? String)

        let other = try FleetHost(sandboxes, id: "other")
        let listed = try #require(SandboxHarness.jsonObjects(try other.cli(["sandbox", "list", "--json"]).stdout).first)
        #expect(listed["host"] as? String == HostOptions.defaultID && listed["tenant"] as? String == tenant)
        for verb in [["sandbox", "stop", tenant], ["sandbox", "restart", tenant], ["sandbox", "start", tenant]] {
            let refused = try other.cli(verb)
            #expect(refused.status != 0 && refused.stderr.contains("runs on host '\(HostOptions.defaultID)'"), "\(verb): \(refused.stderr)")
        }
        // (On this machine both hosts share one systemd, so the other host's reconciler would see the unit alive
        // even without being scoped to its own host: this checks the refusals, the listing and that nothing was
        // recorded against the sandbox, not the reconciler's scope.)
        let hosts = try other.cli(["host", "list", "--json"]).stdout
        #expect(hosts.contains("\"other\"") && hosts.contains("\"\(HostOptions.defaultID)\""), "both hosts registered: \(hosts)")
        let status = try #require(SandboxHarness.jsonObjects(try sandboxes.keyhold.cli(["sandbox", "status", tenant, "--json"]).stdout).first)
        #expect(status["state"] as? String == "running" && status["invocation_id"] as? String == invocation, "untouched: \(status)")
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant, "--json"]).stdout
        #expect(!audit.contains("sandbox.crash") && !audit.contains("sandbox.restart"), "\(audit)")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0, "its own host still manages it")
    }

    @Test func aHostTakesNoMoreSandboxesThanItsCapacity() throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--max-sandboxes", "1"])
        let first = SandboxHarness.tenantName("cap")
        let second = SandboxHarness.tenantName("cap")
        for tenant in [first, second] {
            try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
            try sandboxes.setKey(tenant, SandboxHarness.canary())
        }
        #expect(try sandboxes.start(first).status == 0)
        let refused = try sandboxes.start(second)
        #expect(refused.status != 0 && refused.stderr.contains("is full (1 sandboxes, --max-sandboxes)"), "\(refused.stderr)")
        #expect(try sandboxes.activeUnits(tenant: second).isEmpty, "nothing was started for the second tenant")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", first]).status == 0)
        #expect(try sandboxes.start(second).status == 0, "room again once the first one stopped")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", second]).status == 0)
    }
}
