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
            return ((), [AuditEvent(actor: actor, action: "host.forget", details: ["forgotten": id])])
        }
    }
}
