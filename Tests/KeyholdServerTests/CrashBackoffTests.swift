import Foundation
import Glibc
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// A crash-looping tenant's back-off is its own: it holds up neither the reconciler nor other tenants.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct CrashBackoffTests {
    @Test func anotherTenantsCrashIsRestartedWhileACrashLoopWaitsOutItsBackOff() throws {
        // A first back-off of 2 s, doubling: the looping tenant waits 2, 4, then 8 s between its restarts.
        let sandboxes = try SandboxHarness(extraArguments: ["--restart-backoff-ms", "2000", "--max-restarts", "5"])
        let looping = SandboxHarness.tenantName("loop")
        let steady = SandboxHarness.tenantName("stdy")
        try sandboxes.tenant(looping, agent: #"/bin/sh -c 'echo up; sleep 0.2; exit 3'"#)
        try sandboxes.tenant(steady, agent: #"/bin/sh -c 'echo up; exec sleep infinity'"#)
        for tenant in [looping, steady] {
            try sandboxes.setKey(tenant, SandboxHarness.canary())
            try #require(try sandboxes.start(tenant).status == 0)
        }
        // Two crashes of the looping tenant: its next restart is 8 s away.
        _ = try sandboxes.waitForAudit("two crashes of \(looping)") { audit in
            audit.split(separator: "\n").filter { $0.contains("\"sandbox.crash\"") && $0.contains(looping) }.count >= 2
        }
        let before = try #require(try sandboxes.activeUnits(tenant: steady).first)
        let killed = Date()
        try sandboxes.manager.killUnit(name: before.key, signal: SIGKILL)
        // The steady tenant's first crash waits its own 2 s back-off, not the looping tenant's 8 s.
        var restarted: Date?
        while Date().timeIntervalSince(killed) < 15 {
            if let now = try sandboxes.activeUnits(tenant: steady).first, now.value != before.value {
                restarted = Date()
                break
            }
            usleep(50_000)
        }
        let seconds = try #require(restarted).timeIntervalSince(killed)
        #expect(seconds < 6, "the steady tenant was restarted \(seconds) s after its crash")
        #expect(seconds >= 1.5, "the steady tenant's own back-off was skipped: \(seconds) s")
        for tenant in [looping, steady] { _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant]) }
    }
}
