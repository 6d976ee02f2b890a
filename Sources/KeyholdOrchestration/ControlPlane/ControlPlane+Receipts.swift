import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdVault

extension ControlPlane {
    /// The tenant's own audit records, newest `limit` (all by default), in sequence order.
    /// - Throws: `KeyholdError.notFound` for an unknown tenant.
    public func tenantAuditRecords(tenant name: String, action: String?, since: String?, limit: Int?) async throws -> [AuditRecord] {
        let sinceTime = try since.map { try Self.parseSince($0) }
        return try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            return try tx.auditRecords(tenantID: tenant.id, action: action, since: sinceTime, limit: limit, newest: true)
        }
    }

    /// A receipt of the tenant's `key.inject` and `key.use` records (since a time, if given), signed with this host's
    /// audit key.
    /// - Throws: `KeyholdError.notFound` for an unknown tenant; `.unavailable` when the signing key cannot be read.
    public func injectionReceipt(tenant name: String, since: String?) async throws -> InjectionReceipt {
        let sinceTime = try since.map { try Self.parseSince($0) }
        let key: AuditSigningKey
        do {
            key = try state.loadSigningKey()
        } catch {
            throw KeyholdError.unavailable("cannot sign a receipt: \(error)")
        }
        let (head, records) = try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            let records = try InjectionReceipt.actions.flatMap { try tx.auditRecords(tenantID: tenant.id, action: $0, since: sinceTime) }
            return (try tx.auditHead(), records.sorted { $0.seq < $1.seq })
        }
        return try InjectionReceipt.make(
            tenant: name, host: sandboxes.configuration.hostID ?? ProcessInfo.processInfo.hostName, head: head, records: records, key: key,
            issuedAt: Timestamp.now())
    }
}
