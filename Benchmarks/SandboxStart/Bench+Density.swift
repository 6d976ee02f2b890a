import BenchmarkSupport
import Foundation
import KeyholdClient
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdTesting

extension Bench {
    /// (c) `options.density` idle sandboxes, one tenant each on `plan`, started one after another through the API; then
    /// all stopped.
    /// - Returns: the host's MemAvailable used per sandbox, in KiB (nil when unknown).
    @discardableResult
    func measureDensity(plan: String = "byok") async throws -> Double? {
        let count = options.density
        let prefix = plan == "byok" ? "bench-d" : "bench-db"
        let tenants = (0..<count).map { "\(prefix)\($0)" }
        print(
            "\n(c) density: \(count) idle sandboxes (agent \(Self.agent.joined(separator: " "))), one tenant each on plan \(plan), started in sequence"
        )
        var begin = ContinuousClock.now
        for tenant in tenants { try await createTenant(tenant, plan: plan) }
        print("  \(count) tenants created with a key each in \(seconds(since: begin)) (untimed set-up)")

        let before = memory()
        begin = ContinuousClock.now
        var sandboxes: [AdminAPI.Sandbox] = []
        for tenant in tenants { sandboxes.append(try await startSandbox(tenant)) }
        let startTime = ContinuousClock.now - begin
        for sandbox in sandboxes { try waitForAgent(sandbox) }
        let allRunning = ContinuousClock.now - begin
        print("  started \(count) in \(seconds(startTime)) (API calls, sequential); all agents exec'd after \(seconds(allRunning))")

        let listed = try await client.call("GET", "/v1/sandboxes", as: [AdminAPI.Sandbox].self).filter { tenants.contains($0.tenant) }
        let active = listed.filter { $0.systemdState == "active/running" }.count
        let agents = sandboxes.filter { ProcFiles.command(of: Int32($0.mainPID ?? 0), root: procRoot) == "sleep" }.count
        print("  active/running per systemd: \(active)/\(count); agents running (comm = sleep): \(agents)/\(count)")
        let after = memory()
        print("  memory before -> with \(count) sandboxes:")
        print("    keyhold serve RSS  \(mebibytes(before.daemon)) -> \(mebibytes(after.daemon))")
        print("    systemd RSS        \(mebibytes(before.systemd)) -> \(mebibytes(after.systemd))")
        print("    dbus-daemon RSS    \(mebibytes(before.dbus)) -> \(mebibytes(after.dbus))")
        let perSandboxKiB = before.available.flatMap { b in after.available.map { Double(b - $0) / Double(count) } }
        if let perSandboxKiB {
            let perSandbox = String(format: "%.2f", perSandboxKiB / 1024)
            print(
                "    host MemAvailable  \(mebibytes(Int(perSandboxKiB) * count)) less (\(perSandbox) MiB per sandbox, all processes and kernel included)"
            )
        }

        begin = ContinuousClock.now
        for tenant in tenants { try await stopSandbox(tenant) }
        let left = try manager.listUnits(matching: "keyhold-\(prefix)[0-9]*.service").compactMap { try? manager.unitStatus(name: $0) }
            .filter { $0.activeState != "inactive" }
        for status in left.prefix(3) { print("  still loaded: \(status.name) \(status.activeState)/\(status.subState) pid \(status.mainPID)") }
        print("  stopped all in \(seconds(since: begin)) (\(left.count) not yet inactive); keyhold serve RSS after: \(mebibytes(memory().daemon))")
        return perSandboxKiB
    }

    /// Resident sizes in KiB, and the host's MemAvailable.
    private func memory() -> (daemon: Int?, systemd: Int?, dbus: Int?, available: Int?) {
        let systemd = systemdPID ?? 1
        let dbus = ProcFiles.children(of: systemd).first { ProcFiles.command(of: $0) == "dbus-daemon" }
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let available = meminfo.split(separator: "\n").first { $0.hasPrefix("MemAvailable:") }?
            .split(separator: " ").dropFirst().first.flatMap { Int($0) }
        return (
            harness.daemonPID.flatMap(MachineFacts.residentKiB(of:)), MachineFacts.residentKiB(of: systemd),
            dbus.flatMap(MachineFacts.residentKiB(of:)), available
        )
    }

    private func seconds(since begin: ContinuousClock.Instant) -> String {
        seconds(ContinuousClock.now - begin)
    }

    private func seconds(_ duration: Duration) -> String {
        let (whole, fraction) = duration.components
        return String(format: "%.2f s", Double(whole) + Double(fraction) / 1e18)
    }
}
