import Foundation
public import KeyholdCore
public import KeyholdProxy
public import KeyholdStore
public import KeyholdVault

/// Keyhold's operations, as the admin API, the CLI's offline commands and the demo call them.
///
/// Each operation is one transaction that includes its audit record: if the record cannot be
/// written and synced, nothing changes (fail-closed).
public final class ControlPlane: Sendable {
    public let store: Store
    /// The vault; a KEK rotation replaces it while the daemon serves.
    public let vaults: VaultRing
    public var vault: Vault { vaults.current }
    public let plans: PlanCatalog
    public let validator: KeyValidator
    public let sandboxes: SandboxService
    /// The installation's files (KEK rotation writes there).
    public let state: StateDirectory
    /// Serialises KEK rotations and retirements.
    let kekLock = TenantLocks()
    /// Posts key health changes to tenants' webhooks.
    let webhooks: WebhookSender

    public init(
        store: Store, vaults: VaultRing, plans: PlanCatalog, validator: KeyValidator, sandboxes: SandboxService, state: StateDirectory,
        webhooks: WebhookSender
    ) {
        self.webhooks = webhooks
        self.store = store
        self.vaults = vaults
        self.plans = plans
        self.validator = validator
        self.sandboxes = sandboxes
        self.state = state
    }

    /// Runs `body` in a write transaction and appends the audit event it returns in the same transaction.
    public func audited<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> (T, [AuditEvent])) async throws -> T {
        try await store.write { tx in
            let (value, events) = try body(tx)
            for event in events { try tx.appendAudit(event) }
            return value
        }
    }

    /// Records a refused or failed attempt on its own (the attempt changed nothing else).
    func recordAttempt(_ event: AuditEvent) async throws {
        try await store.write { tx in _ = try tx.appendAudit(event) }
    }
}
