import Foundation
import KeyholdCore
import KeyholdSandbox

/// The transient unit of a tenant's sandbox: the profile's hardening plus the plan's limits and the launcher.
enum SandboxUnit {
    /// Where a managed sandbox finds the directory of the metering proxy's Unix socket (bound read-only: a
    /// socket on a read-only mount still accepts connections).
    static let proxyDirectoryInSandbox = "/run/keyhold-proxy"

    /// The proxy socket's path inside a sandbox.
    static func proxySocketInSandbox(_ hostPath: String) -> String {
        proxyDirectoryInSandbox + "/" + (hostPath as NSString).lastPathComponent
    }

    /// The unit's properties. The key is not among them: it travels through `stdinDescriptor`.
    /// - Parameter stdinDescriptor: the read end of the injection pipe; sd-bus duplicates it, the caller closes it.
    static func properties(
        tenant: String, plan: Plan, profile: SandboxProfile, agent: [String], agentNotify: Bool, execPath: String, stdinDescriptor: Int32,
        proxySocketPath: String? = nil
    ) -> [UnitProperty] {
        var properties: [UnitProperty] = [
            .string("Description", "Keyhold sandbox of tenant \(tenant) (plan \(plan.id), profile \(profile.name))"),
            // notify: the start job completes when the agent (keyhold-exec exec()s it: it is the main process) sends READY=1.
            .string("Type", agentNotify ? "notify" : "exec"),
            .string("NotifyAccess", agentNotify ? "main" : "none"),
            .string("User", "kh-\(tenant)"),
            .execStart(path: execPath, argv: [execPath, "--"] + agent),
            .fileDescriptor("StandardInputFileDescriptor", stdinDescriptor),
            .string("StandardOutput", "journal"),
            .string("StandardError", "journal"),
            .uint64("MemoryMax", plan.sandbox.memoryMaxBytes),
            .uint64("MemoryHigh", plan.sandbox.memoryMaxBytes / 10 * 9),
            .uint64("CPUQuotaPerSecUSec", UInt64(plan.sandbox.cpuQuotaPercent) * 10_000),
            .uint64("TasksMax", UInt64(plan.sandbox.tasksMax)),
        ]
        if plan.kind == .managed, let proxySocketPath {
            let directory = (proxySocketPath as NSString).deletingLastPathComponent
            properties.append(.bindPaths("BindReadOnlyPaths", [BindPath(source: directory, destination: proxyDirectoryInSandbox)]))
        }
        let ours = Set(properties.map(\.name))
        properties += profile.unitProperties.filter { !ours.contains($0.name) }
        return properties
    }
}
