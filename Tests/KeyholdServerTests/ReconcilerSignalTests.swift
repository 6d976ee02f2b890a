import Foundation
import Glibc
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The reconciler follows systemd's signals (`PropertiesChanged`, `UnitRemoved`): it reads no unit's status while
/// nothing changes, and a crash reaches it as a signal.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct ReconcilerSignalTests {
    @Test func runningSandboxesCostNoStatusReadsAndACrashIsSeenAtOnce() async throws {
        let port = try LoopbackPort.free()
        // A slow interval: a crash restarted well within it was signalled, not found by a pass.
        let sandboxes = try SandboxHarness(extraArguments: [
            "--metrics", "127.0.0.1:\(port)", "--reconcile-interval-ms", "3000", "--restart-backoff-ms", "10",
        ])
        var tenants: [String] = []
        for _ in 0..<3 {
            let tenant = SandboxHarness.tenantName("sig")
            try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
            try sandboxes.setKey(tenant, SandboxHarness.canary())
            try #require(try sandboxes.start(tenant).status == 0)
            tenants.append(tenant)
        }
        // Once each unit's state is known (one read each at most), passes go by without a read.
        let settled = try await waitForPasses(port, after: try await MetricsTests.scrape(port).samples, count: 2)
        let later = try await waitForPasses(port, after: settled, count: 2)
        let reads =
            MetricsTests.total(later, "keyhold_systemd_status_reads_total") - MetricsTests.total(settled, "keyhold_systemd_status_reads_total")
        #expect(reads == 0, "the reconciler read \(reads) unit statuses while nothing changed")

        // A crash: restarted long before the next timed pass.
        let before = try #require(try sandboxes.activeUnits(tenant: tenants[0]).first)
        let killed = Date()
        try sandboxes.manager.killUnit(name: before.key, signal: SIGKILL)
        var restarted: Date?
        while Date().timeIntervalSince(killed) < 10 {
            if let now = try sandboxes.activeUnits(tenant: tenants[0]).first, now.value != before.value {
                restarted = Date()
                break
            }
            usleep(20_000)
        }
        let seconds = try #require(restarted, "the killed agent was not restarted").timeIntervalSince(killed)
        #expect(seconds < 1.5, "restarted \(seconds) s after the crash: found by a pass, not by a signal")
        for tenant in tenants { _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant]) }
    }

    /// Scrapes until the reconciler made `count` more passes than in `earlier` (bounded: 30 s).
    private func waitForPasses(_ port: Int, after earlier: [String: Double], count: Double) async throws -> [String: Double] {
        let deadline = Date().addingTimeInterval(30)
        let start = MetricsTests.total(earlier, "keyhold_reconciler_passes_total")
        while Date() < deadline {
            let samples = try await MetricsTests.scrape(port).samples
            if MetricsTests.total(samples, "keyhold_reconciler_passes_total") >= start + count { return samples }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("the reconciler made fewer than \(Int(count)) passes in 30 s")
        return earlier
    }
}
