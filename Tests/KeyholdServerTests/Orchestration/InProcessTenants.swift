import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdTesting

/// Names and keys for orchestration tests in process.
enum InProcessTenants {
    /// A canary key: unique, searchable, never a real key's shape.
    static func canary() -> String { "sk-ant-canary-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    /// A unique tenant name.
    static func name(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(6).lowercased())" }
}

extension InProcessHost {
    /// A BYOK tenant with a canary Anthropic key, its sandbox started.
    func runningTenant(_ prefix: String) async throws -> (tenant: String, key: String, unit: String) {
        let tenant = InProcessTenants.name(prefix)
        let key = InProcessTenants.canary()
        try await self.tenant(tenant, key: key)
        let sandbox = try await sandboxes.start(tenant: tenant, actor: "test")
        return (tenant, key, sandbox.unit)
    }

    /// The tenant's Anthropic key versions as `VERSION:STATE`, oldest first.
    func keyStates(_ tenant: String) async throws -> [String] {
        try await plane.listKeys(tenant: tenant).filter { $0.provider == "anthropic" }.sorted { $0.version < $1.version }.map {
            "\($0.version):\($0.state)"
        }
    }

    /// Waits until systemd signals `unit` as `state` (or returns at once when it is so already).
    func waitForUnit(_ unit: String, state wanted: String) async {
        let events = systemd.unitEvents(prefixes: [unit])
        if systemd.unit(unit)?.activeState == wanted { return }
        for await event in events {
            if case .changed(unit: let changed, activeState: let state) = event, changed == unit, state == wanted { return }
        }
    }

    /// Waits until a unit of `tenant` other than those in `except` is active and its launcher has read its key (the
    /// start is then complete: its record says running), and returns it.
    func waitForNewUnit(of tenant: String, except: Set<String>) async -> String {
        let events = systemd.unitEvents(prefixes: ["keyhold-\(tenant)-"])
        var unit = activeUnits(tenant: tenant).first { !except.contains($0) }
        if unit == nil {
            for await event in events {
                if case .changed(unit: let changed, activeState: let state) = event, state == "active", !except.contains(changed) {
                    unit = changed
                    break
                }
            }
        }
        guard let unit else { return "" }
        _ = await systemd.payload(of: unit)
        return unit
    }
}
