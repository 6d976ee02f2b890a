import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer

/// The floor: the unit Keyhold would start for a tenant, minus Keyhold (no keyhold-exec, no pipe).
enum FloorUnit {
    /// `SandboxUnit.properties` (KeyholdServer, internal) for a `Type=exec` agent, with `ExecStart` the agent itself
    /// and no `StandardInputFileDescriptor`. Keep in step with Sources/KeyholdServer/SandboxUnit.swift.
    /// - Parameter boundary: the files (`/etc/hosts`, `/etc/resolv.conf`) of the network boundary in systemd's view;
    ///   nil gives the same unit without any of the boundary: the host's network, /run and /var/lib, no state directory.
    static func properties(
        tenant: String, plan: Plan, profile: SandboxProfile, agent: [String], boundary: (hosts: String, resolvConf: String)?
    ) -> [UnitProperty] {
        var properties: [UnitProperty] = [
            .string("Description", "Keyhold sandbox of tenant \(tenant) (plan \(plan.id), profile \(profile.name))"),
            .string("Type", "exec"),
            .string("NotifyAccess", "none"),
            .string("User", "kh-\(tenant)"),
            .execStart(path: agent[0], argv: agent),
            .string("StandardOutput", "journal"),
            .string("StandardError", "journal"),
            .uint64("MemoryMax", plan.sandbox.memoryMaxBytes),
            .uint64("MemoryHigh", plan.sandbox.memoryMaxBytes / 10 * 9),
            .uint64("CPUQuotaPerSecUSec", UInt64(plan.sandbox.cpuQuotaPercent) * 10_000),
            .uint64("TasksMax", UInt64(plan.sandbox.tasksMax)),
        ]
        if let boundary {
            properties += BoundaryUnitProperties.make(
                hostsFile: boundary.hosts, resolvConfFile: boundary.resolvConf, stateDirectory: "keyhold-agents/\(tenant)", notifySocket: false,
                // The same mounts as a sandbox's: its bundle of roots too (here the system's own file).
                trustBundleFile: FileManager.default.fileExists(atPath: "/etc/ssl/certs/ca-certificates.crt")
                    ? "/etc/ssl/certs/ca-certificates.crt" : nil)
        } else {
            properties.append(.bool("PrivateNetwork", false))
        }
        let ours = Set(properties.map(\.name)).union(boundary == nil ? ["IPAddressAllow", "IPAddressDeny"] : [])
        properties += profile.unitProperties.filter { !ours.contains($0.name) }
        return properties
    }

    /// `systemd-run` arguments starting `unit` with `properties` (each as `-p Name=value`, in systemd-run's syntax).
    /// systemd-run waits for the start job, so it returns when a `Type=exec` agent was executed.
    static func systemdRunArguments(unit: String, properties: [UnitProperty]) -> [String] {
        var arguments = ["--quiet", "--unit=\(unit)"]
        var command: [String] = []
        for property in properties {
            switch property {
            case .execStart(let path, let argv): command = [path] + argv.dropFirst()
            case .fileDescriptor: continue
            case .string(let name, let value): arguments += ["-p", "\(name)=\(value)"]
            case .bool(let name, let value): arguments += ["-p", "\(name)=\(value ? "yes" : "no")"]
            case .uint64(let name, let value): arguments += assignment(name, value).map { ["-p", $0] } ?? []
            case .uint32(let name, let value): arguments += ["-p", name == "UMask" ? "UMask=0\(String(value, radix: 8))" : "\(name)=\(value)"]
            case .int32(let name, let value): arguments += ["-p", "\(name)=\(value)"]
            case .strings(let name, let values): arguments += ["-p", "\(name)=\(values.joined(separator: " "))"]
            case .boolStrings(let name, let allow, let names): arguments += ["-p", "\(name)=\(allow ? "" : "~")\(names.joined(separator: " "))"]
            case .bindPaths(let name, let paths):
                let text = paths.map { "\($0.ignoreMissing ? "-" : "")\($0.source):\($0.destination)" }.joined(separator: " ")
                arguments += ["-p", "\(name)=\(text)"]
            case .ipAddresses(let name, let prefixes):
                arguments += ["-p", "\(name)=" + prefixes.map(prefixText).joined(separator: " ")]
            case .temporaryFileSystems(let name, let entries):
                arguments += ["-p", "\(name)=" + entries.map { $0.options.isEmpty ? $0.path : "\($0.path):\($0.options)" }.joined(separator: " ")]
            }
        }
        return arguments + ["--"] + command
    }

    /// An address prefix as systemd-run reads it (IPv6 in full, uncompressed form).
    private static func prefixText(_ prefix: IPAddressPrefix) -> String {
        let address =
            prefix.address.count == 4
            ? prefix.address.map(String.init).joined(separator: ".")
            : stride(from: 0, to: 16, by: 2).map { String(UInt16(prefix.address[$0]) << 8 | UInt16(prefix.address[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        return "\(address)/\(prefix.prefixLength)"
    }

    /// A `t` property in systemd-run's syntax; nil when another assignment already covers it.
    private static func assignment(_ name: String, _ value: UInt64) -> String? {
        switch name {
        case "CPUQuotaPerSecUSec": return "CPUQuota=\(value / 10_000)%"
        case "CapabilityBoundingSet", "AmbientCapabilities":
            return "\(name)=" + (0..<64).filter { value & (1 << $0) != 0 }.map(String.init).joined(separator: " ")
        case "RestrictNamespaces": return "RestrictNamespaces=" + namespaces(value)
        case _ where name.hasPrefix("Limit") && name.hasSuffix("Soft"): return nil  // LimitX= sets soft and hard
        case _ where name.hasSuffix("USec"): return "\(name.dropLast(4))Sec=\(value)us"
        default: return "\(name)=\(value)"
        }
    }

    /// A `RestrictNamespaces` mask (the namespaces allowed) as systemd-run reads it.
    private static func namespaces(_ mask: UInt64) -> String {
        let flags: [(UInt64, String)] = [
            (0x0200_0000, "cgroup"), (0x0800_0000, "ipc"), (0x4000_0000, "net"), (0x0002_0000, "mnt"),
            (0x2000_0000, "pid"), (0x1000_0000, "user"), (0x0400_0000, "uts"),
        ]
        if mask == 0 { return "yes" }
        if flags.allSatisfy({ mask & $0.0 != 0 }) { return "no" }
        return flags.filter { mask & $0.0 != 0 }.map(\.1).joined(separator: " ")
    }
}
