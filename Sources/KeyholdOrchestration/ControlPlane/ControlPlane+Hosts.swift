public import KeyholdCore
import KeyholdStore

extension ControlPlane {
    /// Every host of the fleet (on SQLite: this one).
    public func listHosts() async throws -> [AdminAPI.Host] {
        try await store.read { tx in try tx.hosts() }.map(\.api)
    }

    /// Removes a host that is down and runs nothing, audited.
    public func forgetHost(_ id: String, actor: String) async throws {
        try await audited { tx in
            try tx.forgetHost(id: id)
            return ((), [AuditEvent(actor: actor, action: .hostForget, details: ["forgotten": id])])
        }
    }

    /// Marks a host draining and places its tenants on other hosts (each moves blue/green), audited.
    public func drainHost(_ id: String, actor: String) async throws -> AdminAPI.Drain {
        try await audited { tx in
            let (moved, left) = try tx.drainHost(id: id, actor: actor)
            let drain = AdminAPI.Drain(host: id, moved: moved, left: left)
            return (
                drain, [AuditEvent(actor: actor, action: .hostDrain, details: ["drained": id, "moved": String(moved.count), "left": String(left)])]
            )
        }
    }

    /// Makes a drained host take tenants again, audited.
    public func activateHost(_ id: String, actor: String) async throws {
        try await audited { tx in
            try tx.activateHost(id: id)
            return ((), [AuditEvent(actor: actor, action: .hostActivate, details: ["activated": id])])
        }
    }
}
