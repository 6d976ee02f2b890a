import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// An agent's /tmp and /var/tmp are tmpfs of its own, bounded by its plan's tmp_max and charged to its memory: one
/// agent filling them hits ENOSPC, not the disk that holds the database and the usage journal.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxTmpTests {
    @Test func aFilledTmpIsTheAgentsOwnProblem() throws {
        let keyhold = try KeyholdHarness()
        let plans = keyhold.root + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        let byok = try String(contentsOfFile: BuildProducts.plansDirectory + "/byok.yaml", encoding: .utf8)
        try #require(byok.contains("  tmp_max: 128M\n"))
        try byok.replacingOccurrences(of: "  tmp_max: 128M\n", with: "  tmp_max: 16M\n").write(
            toFile: plans + "/byok.yaml", atomically: true, encoding: .utf8)
        let sandboxes = try SandboxHarness(extraArguments: ["--plans", plans])
        let filler = SandboxHarness.tenantName("fill")
        let fill = [
            "dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>/dev/null; echo \"check tmp_dd $?\"",
            "echo \"check tmp_bytes $(stat -c %s /tmp/fill)\"",
            "dd if=/dev/zero of=/var/tmp/fill bs=1M count=64 2>/dev/null; echo \"check vartmp_dd $?\"",
            "echo \"check vartmp_bytes $(stat -c %s /var/tmp/fill)\"",
            "echo \"check tmp_fs $(stat -f -c %T /tmp)\"",
            "echo \"check tmp_mount $(grep \" /tmp \" /proc/self/mountinfo | tail -n 1 | grep -o \"tmpfs tmpfs rw.*size=[0-9]*k\")\"",
            "echo \"check filled yes\"",
            "exec sleep infinity",
        ].joined(separator: "; ")
        try sandboxes.tenant(filler, agent: "/bin/sh -c '\(fill)'")
        try sandboxes.setKey(filler, SandboxHarness.canary())
        try #require(try sandboxes.start(filler).status == 0)
        _ = try sandboxes.waitForLog(filler, containing: "check filled")
        let filled = try sandboxes.checks(filler)
        #expect(filled["tmp_dd"] != "0", "dd ran out of room: \(filled)")
        #expect(filled["vartmp_dd"] != "0", "\(filled)")
        #expect(filled["tmp_fs"] == "tmpfs", "\(filled)")
        for name in ["tmp_bytes", "vartmp_bytes"] {
            let bytes = Int(filled[name] ?? "") ?? -1
            #expect(bytes > 0 && bytes <= 16 << 20, "\(name): \(filled)")
        }
        // The top mount of /tmp is the bounded tmpfs, over systemd's PrivateTmp= directory on the host's disk.
        #expect(filled["tmp_mount"]?.hasSuffix("size=16384k") == true, "\(filled)")

        // Another tenant, started after, runs with an empty /tmp of its own and room in it.
        let neighbour = SandboxHarness.tenantName("room")
        try sandboxes.tenant(
            neighbour,
            agent:
                "/bin/sh -c 'echo \"check sees_fill $(test -e /tmp/fill && echo yes || echo no)\"; dd if=/dev/zero of=/tmp/mine bs=1M count=8 2>/dev/null; echo \"check mine_dd $?\"; echo \"check ready yes\"; exec sleep infinity'"
        )
        try sandboxes.setKey(neighbour, SandboxHarness.canary())
        try #require(try sandboxes.start(neighbour).status == 0)
        _ = try sandboxes.waitForLog(neighbour, containing: "check ready")
        let results = try sandboxes.checks(neighbour)
        #expect(results["sees_fill"] == "no" && results["mine_dd"] == "0", "\(results)")
        #expect(try sandboxes.activeUnits(tenant: filler).count == 1, "the filler still runs: its full /tmp is its own problem")
        for tenant in [filler, neighbour] { _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant]) }
    }
}
