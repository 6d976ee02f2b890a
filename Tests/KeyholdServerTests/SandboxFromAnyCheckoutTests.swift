import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// A build tree that sandboxes cannot see still starts agents (its launcher is copied), and stopping an agent that has
/// already exited is what the user asked for, not an error.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxFromAnyCheckoutTests {
    @Test func aDaemonBuiltUnderRootStartsAgentsFromItsLaunchersCopy() throws {
        let checkout = "/root/keyhold-\(LauncherPlacementTests.unique())"
        defer { try? FileManager.default.removeItem(atPath: checkout) }
        let launcher = try LauncherPlacementTests.plantLaunchers(in: checkout + "/.build/debug")
        let staging = "/usr/local/libexec/keyhold-test-\(LauncherPlacementTests.unique())"
        defer { try? FileManager.default.removeItem(atPath: staging) }

        let sandboxes = try SandboxHarness(extraArguments: ["--exec-path", launcher, "--launcher-staging-root", staging])
        let tenant = SandboxHarness.tenantName("root")
        try sandboxes.tenant(
            tenant, agent: "/bin/sh -c 'echo \"agent key $(printf %s \"$ANTHROPIC_API_KEY\" | sha256sum | cut -c1-64)\"; exec sleep infinity'")
        let canary = SandboxHarness.canary()
        try sandboxes.setKey(tenant, canary)
        let start = try sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")
        #expect(try sandboxes.waitForLog(tenant, containing: "agent key").hasSuffix(try SandboxHarness.sha256(canary)))

        let unit = try #require(try sandboxes.loadedUnits(tenant: tenant).first)
        let show = try sandboxes.systemctlShow(unit)
        #expect(show.contains(staging + "/") && !show.contains(checkout), "the unit runs the root-owned copy")
        let log = try String(contentsOfFile: sandboxes.keyhold.daemonLogPath, encoding: .utf8)
        #expect(log.contains("under /root"), "the daemon says why it copied the launcher")
        #expect(!show.contains(canary) && !log.contains(canary))
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)
    }

    @Test func stoppingATenantWhoseAgentExitedSucceedsAndSaysSo() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("exited")
        try sandboxes.tenant(tenant, agent: "/bin/sh -c 'echo agent done'")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        let start = try sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")
        _ = try sandboxes.waitForLog(tenant, containing: "agent done")
        // Whether or not the daemon has noticed the exit yet, the user's request already holds.
        let first = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        #expect(first.status == 0, "\(first.stderr)")
        let second = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stdout.contains("had no sandbox running") && second.stdout.contains("nothing to stop"), "\(second.stdout)")
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty)
        // A tenant that never started is no error either; an unknown one is.
        let never = SandboxHarness.tenantName("never")
        try sandboxes.tenant(never, agent: "/bin/sleep infinity")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", never]).status == 0)
        let unknown = try sandboxes.keyhold.cli(["sandbox", "stop", "nobody-\(LauncherPlacementTests.unique())"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no tenant named"))
    }
}
