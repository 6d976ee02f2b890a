import Foundation
import GRDB
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Each bad start is a clear error, leaves no unit behind and delivers no key.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxBadInputTests {
    static func expectRefused(_ sandboxes: SandboxHarness, _ tenant: String, _ message: String) throws {
        let start = try sandboxes.start(tenant)
        #expect(start.status != 0)
        #expect(start.stderr.contains(message), "\(start.stderr)")
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty)
        #expect(try sandboxes.keyhold.cli(["sandbox", "status", tenant]).stdout.contains("no sandbox running"))
    }

    @Test func aMissingAgentBinary() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("noagent")
        try sandboxes.tenant(tenant, agent: "/opt/nowhere/agent --serve")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try Self.expectRefused(sandboxes, tenant, "is not an executable file on this host")
    }

    @Test func aBYOKTenantWithoutAKey() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("nokey")
        try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
        try Self.expectRefused(sandboxes, tenant, "has no active key on its BYOK plan")
    }

    @Test func aProfileWithATypo() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-bad-profile-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let text = try String(contentsOfFile: BuildProducts.profilesDirectory + "/default.json", encoding: .utf8)
        try text.replacingOccurrences(of: "\"ProtectSystem\"", with: "\"ProtectSytem\"").write(
            toFile: directory + "/default.json", atomically: true, encoding: .utf8
        )
        let sandboxes = try SandboxHarness(profilesDirectory: directory)
        let tenant = SandboxHarness.tenantName("typo")
        try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try Self.expectRefused(sandboxes, tenant, "default.json: unit.ProtectSytem")
    }

    @Test func systemdUnreachable() throws {
        let sandboxes = try SandboxHarness(systemdBus: "unix:path=/run/keyhold-test-nonexistent/bus")
        let tenant = SandboxHarness.tenantName("nobus")
        try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        let start = try sandboxes.start(tenant)
        #expect(start.status != 0)
        #expect(start.stderr.contains("--systemd-bus"), "the error says how to point at a systemd: \(start.stderr)")
    }

    @Test func anAuditLogThatCannotBeWrittenMeansNoInjection() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("noaudit")
        try sandboxes.tenant(tenant, agent: #"/bin/sh -c 'echo "hash=$(printf %s "$ANTHROPIC_API_KEY" | sha256sum)"; exec sleep infinity'"#)
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try sandboxes.keyhold.tamper(
            "CREATE TRIGGER refuse_inject BEFORE INSERT ON audit WHEN NEW.action = 'key.inject' BEGIN SELECT RAISE(ABORT, 'audit disk full'); END",
            postgresql: """
                CREATE FUNCTION refuse_inject() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit disk full'; END $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse_inject BEFORE INSERT ON audit FOR EACH ROW WHEN (NEW.action = 'key.inject') EXECUTE FUNCTION refuse_inject();
                """)
        try Self.expectRefused(sandboxes, tenant, "no key was injected")
        let logs = try sandboxes.keyhold.cli(["sandbox", "logs", tenant]).stdout
        #expect(!logs.contains("hash="), "the agent never ran with a key: \(logs)")
    }
}
