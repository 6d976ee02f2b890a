import Foundation
import KeyholdCore
import KeyholdSandbox

/// The transient unit of a tenant's sandbox: the profile's hardening plus the plan's limits, the launcher, and the
/// boundary Keyhold owns whatever the profile says (a network of its own, /run hidden, the agent's state).
enum SandboxUnit {
    /// What the boundary adds to a unit.
    struct Boundary {
        /// The sandbox's `/etc/hosts` and `/etc/resolv.conf`, as systemd sees them.
        var hostsFile: String
        var resolvConfFile: String
        /// The sandbox's bundle of trusted roots (nil on a host without one).
        var trustBundleFile: String?
        /// The tenant's persistent state.
        var state: AgentStateDirectory
        /// Whether the state is over the plan's limit: it is then mounted read-only.
        var stateReadOnly: Bool
    }

    /// The unit's properties. The key is not among them: it travels through `stdinDescriptor`.
    /// - Parameter stdinDescriptor: the read end of the injection pipe; sd-bus duplicates it, the caller closes it.
    static func properties(
        tenant: String, plan: Plan, profile: SandboxProfile, agent: [String], agentNotify: Bool, execPath: String, stdinDescriptor: Int32,
        boundary: Boundary
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
        ]
        properties += limits(plan)
        properties += BoundaryUnitProperties.make(
            hostsFile: boundary.hostsFile, resolvConfFile: boundary.resolvConfFile, stateDirectory: boundary.state.systemdName,
            notifySocket: agentNotify, trustBundleFile: boundary.trustBundleFile)
        if boundary.stateReadOnly { properties.append(.strings("ReadOnlyPaths", [boundary.state.privatePath])) }
        let ours = Set(properties.map(\.name))
        properties += profile.unitProperties.filter { !ours.contains($0.name) }
        return properties
    }

    /// A warm pool's unit for `plan`: the same limits and hardening as a tenant's, with `keyhold-exec --pooled` (the
    /// agent's argv comes with the key), a dynamic user of its own, and no state (mounted in when a start takes it).
    static func pooledProperties(
        plan: Plan, profile: SandboxProfile, user: String, execPath: String, stdinDescriptor: Int32, hostsFile: String, resolvConfFile: String,
        trustBundleFile: String?
    ) -> [UnitProperty] {
        var properties: [UnitProperty] = [
            .string("Description", "Keyhold warm sandbox of plan \(plan.id) (profile \(profile.name)), waiting for a tenant"),
            .string("Type", "exec"),
            .string("NotifyAccess", "none"),
            .string("User", user),
            .execStart(path: execPath, argv: [execPath, "--pooled"]),
            .fileDescriptor("StandardInputFileDescriptor", stdinDescriptor),
            .string("StandardOutput", "journal"),
            .string("StandardError", "journal"),
        ]
        properties += limits(plan)
        properties += BoundaryUnitProperties.make(
            hostsFile: hostsFile, resolvConfFile: resolvConfFile, stateDirectory: nil, notifySocket: false, trustBundleFile: trustBundleFile)
        let ours = Set(properties.map(\.name))
        properties += profile.unitProperties.filter { !ours.contains($0.name) }
        return properties
    }

    /// The plan's resource limits.
    private static func limits(_ plan: Plan) -> [UnitProperty] {
        [
            .uint64("MemoryMax", plan.sandbox.memoryMaxBytes),
            .uint64("MemoryHigh", plan.sandbox.memoryMaxBytes / 10 * 9),
            .uint64("CPUQuotaPerSecUSec", UInt64(plan.sandbox.cpuQuotaPercent) * 10_000),
            .uint64("TasksMax", UInt64(plan.sandbox.tasksMax)),
        ]
    }
}
