import Foundation
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Real sandboxed agents under a real systemd, started through the real daemon and CLI.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxInjectionTests {
    static let hashAgent = #"/bin/sh -c 'echo "hash=$(printf %s "$ANTHROPIC_API_KEY" | sha256sum | cut -c1-64)"; exec sleep infinity'"#

    @Test func theAgentHoldsItsKeyAndTheCanaryIsNowhereElse() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("inj")
        let canary = SandboxHarness.canary()
        try sandboxes.tenant(tenant, agent: Self.hashAgent)
        try sandboxes.setKey(tenant, canary)
        let start = try sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")

        let line = try sandboxes.waitForLog(tenant, containing: "hash=")
        #expect(line.hasSuffix("hash=" + (try SandboxHarness.sha256(canary))))

        let unit = try #require(try sandboxes.loadedUnits(tenant: tenant).first)
        let show = try sandboxes.systemctlShow(unit)
        #expect(show.contains("DynamicUser=yes"))
        #expect(!show.contains(canary))
        for pid in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where pid.allSatisfy(\.isNumber) {
            let cmdline = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
            #expect(cmdline.range(of: Data(canary.utf8)) == nil, "pid \(pid)'s argv holds the key")
        }
        #expect(KeyholdHarness.files(under: sandboxes.keyhold.stateDirectory, containing: canary).isEmpty)
        #expect(KeyholdHarness.files(under: "/run", containing: canary).isEmpty)
        if case .privateInstance(let instance) = sandboxes.systemd {
            // Its /run (runtime journal, unit state) and /var/log (persistent journal).
            #expect(KeyholdHarness.files(under: instance.rootDirectory + "/run", containing: canary).isEmpty)
            #expect(KeyholdHarness.files(under: instance.rootDirectory + "/var/log", containing: canary).isEmpty)
        }
        #expect(!sandboxes.keyhold.daemonLog.contains(canary))

        let audit = try sandboxes.keyhold.cli(["audit", "list", "--action", "key.inject", "--tenant", tenant, "--json"]).stdout
        #expect(audit.contains(unit))
        #expect(audit.contains("\"invocation_id\""))
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty)
    }

    @Test func oneTenantCannotReachAnothersKeyProcessesOrPtrace() throws {
        let sandboxes = try SandboxHarness()
        let victim = SandboxHarness.tenantName("vic")
        let canary = SandboxHarness.canary()
        try sandboxes.tenant(victim, agent: Self.hashAgent)
        try sandboxes.setKey(victim, canary)
        let started = try sandboxes.start(victim)
        let victimPID = try #require(SandboxHarness.mainPID(started.stdout))
        _ = try sandboxes.waitForLog(victim, containing: "hash=")

        let snoop = SandboxHarness.tenantName("snp")
        let script = """
            pids=$(ls -d /proc/[0-9]* | wc -l); \
            hits=$(cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c ANTHROPIC_API_KEY=sk-ant-canary); \
            cat /proc/\(victimPID)/environ >/dev/null 2>&1; direct=$?; \
            ptrace=$(python3 -c 'import ctypes,sys; libc=ctypes.CDLL(None,use_errno=True); r=libc.ptrace(16,\(victimPID),0,0); print(ctypes.get_errno() if r!=0 else 0)' 2>&1); \
            ls /tmp /var/tmp >/dev/null 2>&1; \
            echo "snoop pids=$pids hits=$hits direct=$direct ptrace=$ptrace"; exec sleep infinity
            """
        try sandboxes.tenant(snoop, agent: "/bin/sh -c '\(script.replacingOccurrences(of: "'", with: "'\\''"))'")
        try sandboxes.setKey(snoop, "sk-ant-snoop-" + UUID().uuidString)
        try #require(try sandboxes.start(snoop).status == 0)
        let report = try sandboxes.waitForLog(snoop, containing: "snoop ")
        #expect(report.contains("hits=0"), "the other tenant's key is not readable: \(report)")
        #expect(!report.contains("direct=0"), "the victim's /proc entry is not readable: \(report)")
        #expect(!report.contains("ptrace=0"), "ptrace of the victim fails: \(report)")
        let pids = Int(report.split(separator: " ").first { $0.hasPrefix("pids=") }?.dropFirst(5) ?? "") ?? 99
        #expect(pids <= 8, "only its own processes are visible: \(report)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", snoop])
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", victim])
    }

    @Test func theProfilesSeccompPolicyBitesInsideAndNotOutside() throws {
        // A copy of the default profile whose seccomp layer also denies uname(2) with EACCES.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-profiles-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for name in ["default", "strict"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: BuildProducts.profilesDirectory + "/\(name).json"))
            var profile = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            var seccomp = try #require(profile["seccomp"] as? [String: Any])
            var syscalls = try #require(seccomp["syscalls"] as? [[String: Any]])
            syscalls.append(["names": ["uname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13])
            seccomp["syscalls"] = syscalls
            profile["seccomp"] = seccomp
            try JSONSerialization.data(withJSONObject: profile).write(to: URL(fileURLWithPath: directory + "/\(name).json"))
        }
        #expect(try ProcessRunner.run("/bin/uname", ["-s"]).status == 0, "uname works outside")
        let sandboxes = try SandboxHarness(profilesDirectory: directory)
        let tenant = SandboxHarness.tenantName("sec")
        try sandboxes.tenant(tenant, agent: #"/bin/sh -c 'uname -s; echo "uname_rc=$?"; exec sleep infinity'"#)
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try #require(try sandboxes.start(tenant).status == 0)
        let line = try sandboxes.waitForLog(tenant, containing: "uname_rc=")
        #expect(line.hasSuffix("uname_rc=1"))
        let logs = try sandboxes.keyhold.cli(["sandbox", "logs", tenant]).stdout
        #expect(logs.contains("Permission denied"), "EACCES, the profile's errno: \(logs)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
    }

    @Test func aCrashedAgentIsRestartedWithAFreshAuditedInjectionThenReportedFailed() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("crash")
        try sandboxes.tenant(tenant, agent: #"/bin/sh -c 'echo "up"; exit 3'"#)
        try sandboxes.setKey(tenant, SandboxHarness.canary())
        try #require(try sandboxes.start(tenant).status == 0)
        // --max-restarts 2: the first start and two restarts, each its own injection, then failed.
        let audit = try sandboxes.waitForAudit("sandbox.fail") { $0.contains("\"sandbox.fail\"") }
        let injections = audit.split(separator: "\n").filter { $0.contains("\"key.inject\"") && $0.contains(tenant) }
        #expect(injections.count == 3)
        let invocations = Set(
            injections.compactMap { line in line.range(of: #""invocation_id":"[0-9a-f]{32}""#, options: .regularExpression).map { String(line[$0]) } }
        )
        #expect(invocations.count == 3, "each restart is a new invocation")
        #expect(audit.split(separator: "\n").filter { $0.contains("\"sandbox.crash\"") }.count == 2)
        let status = try sandboxes.keyhold.cli(["sandbox", "status", tenant]).stdout
        #expect(status.contains("failed"))
        #expect(status.contains("status=3"))
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty)
    }

    @Test func aSuspendedTenantsSandboxStopsAndStaysStopped() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("susp")
        try sandboxes.tenant(
            tenant, plan: "managed", agent: #"/bin/sh -c 'echo "token=${#KEYHOLD_PROXY_TOKEN} base=$OPENAI_BASE_URL"; exec sleep infinity'"#)
        try #require(try sandboxes.start(tenant).status == 0)
        let line = try sandboxes.waitForLog(tenant, containing: "token=")
        #expect(line.contains("base=http://127.0.0.1:8787/v1"))
        #expect(!line.contains("token=0 "), "the managed agent got a proxy token")
        #expect(try sandboxes.keyhold.cli(["tenant", "suspend", tenant]).status == 0)
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty)
        // Several reconciler passes later it is still stopped, and a start is refused.
        let start = try sandboxes.start(tenant)
        #expect(start.status != 0 && start.stderr.contains("suspended"))
        _ = try sandboxes.waitForAudit("the stop") { $0.contains("\"sandbox.stop\"") }
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty)
        #expect(try sandboxes.keyhold.cli(["sandbox", "status", tenant]).stdout.contains("no sandbox running"))
    }

    @Test func sandboxesStoppedDuringAReconcilerPassStayStopped() throws {
        // A reconciler passing every 5 ms: the stops below land in the middle of its passes.
        let sandboxes = try SandboxHarness(extraArguments: ["--reconcile-interval-ms", "5"])
        let tenants = (0..<12).map { _ in SandboxHarness.tenantName("stay") }
        for tenant in tenants {
            try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
            try sandboxes.setKey(tenant, SandboxHarness.canary())
            try #require(try sandboxes.start(tenant).status == 0)
        }
        for tenant in tenants { #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0) }
        // Watch many reconciler passes: a stopped sandbox must not be mistaken for a crash and restarted.
        let until = Date().addingTimeInterval(1.5)
        while Date() < until {
            for tenant in tenants { #expect(try sandboxes.activeUnits(tenant: tenant).isEmpty, "\(tenant) was restarted") }
        }
        let audit = try sandboxes.keyhold.cli(["audit", "export"]).stdout
        #expect(!audit.contains("sandbox.crash"), "no stop was recorded as a crash")
    }
}
