import BenchmarkSupport
import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer

extension Bench {
    /// (d) `systemd-analyze security` of running sandboxes: the BYOK plan (profile default), the managed plan (profile strict),
    /// and the floor's unit (same properties as BYOK, to check the floor is as hardened).
    func printSecurityScores() async throws {
        print("\n(d) systemd-analyze security, run with nsenter in systemd's namespaces")
        try await createTenant("bench-managed", plan: "managed")
        for tenant in ["bench", "bench-managed"] {
            let sandbox = try await startSandbox(tenant)
            let line = try exposure(of: sandbox.unit)
            try await stopSandbox(tenant)
            print("  \(tenant == "bench" ? "byok (default)    " : "managed (strict)  ") \(line)")
        }
        let floor = "bench-floor-security.service"
        _ = try manager.startTransientUnit(name: floor, properties: floorProperties, timeout: Self.jobTimeout)
        print("  floor, D-Bus      \(try exposure(of: floor))")
        try stopUnit(floor)
        let floorRun = "bench-floor-run-security.service"
        let result = try Spawn.run(
            Spawn.inNamespace(of: systemdPID, ["/usr/bin/systemd-run"] + FloorUnit.systemdRunArguments(unit: floorRun, properties: floorProperties)))
        guard result.status == 0 else { throw BenchError("systemd-run exited \(result.status): \(result.output.suffix(800))") }
        print("  floor, systemd-run \(try exposure(of: floorRun))")
        try stopUnit(floorRun)
    }

    /// The "Overall exposure level" line of `unit`.
    private func exposure(of unit: String) throws -> String {
        let result = try Spawn.run(Spawn.inNamespace(of: systemdPID, ["/usr/bin/systemd-analyze", "security", "--no-pager", unit]))
        guard let line = result.output.split(separator: "\n").first(where: { $0.contains("Overall exposure level") }) else {
            throw BenchError("systemd-analyze security \(unit) exited \(result.status): \(result.output.suffix(500))")
        }
        return line.trimmingCharacters(in: .whitespaces)
    }
}
