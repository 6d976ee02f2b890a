import Foundation
public import KeyholdCore
import KeyholdStore
import KeyholdVault

extension ControlPlane {
    /// The pseudo-provider whose rotation replaces a managed sandbox's proxy token.
    public static let proxyTokenProvider = "proxy-token"

    /// Rotates a tenant's provider key without downtime: stores the new key as a pending version, rolls every
    /// running sandbox onto it blue/green, then activates it and retires the old one.
    ///
    /// For a managed tenant, `proxy-token` rotates the sandboxes' proxy tokens the same way.
    /// - Throws: when the new agent fails; the old one then keeps running and the new version is marked failed.
    public func rotateKey(
        tenant name: String, provider providerName: String, _ request: AdminAPI.SetKey?, actor: String
    ) async throws
        -> AdminAPI.Rotation
    {
        let tenant = try await store.read { tx in try tx.tenant(named: name) }
        let plan = try plans.plan(tenant.plan)
        if providerName == Self.proxyTokenProvider {
            guard plan.kind == .managed else {
                throw KeyholdError.invalidInput("tenant '\(name)' is on a BYOK plan: it has provider keys, not a proxy token, to rotate")
            }
            let rotation = try await audited { tx in
                let rotation = try tx.insertRotation(
                    tenantID: tenant.id, tenantName: name, provider: Self.proxyTokenProvider, from: nil, to: nil,
                    host: self.sandboxes.configuration.hostID)
                return (
                    rotation, [AuditEvent(actor: actor, action: .keyRotate, tenant: name, provider: Self.proxyTokenProvider, outcome: .started)]
                )
            }
            return try await sandboxes.rollOut(rotation, tenant: tenant, pendingKey: nil, previousKey: nil, actor: actor)
        }
        let provider = try Provider.named(providerName)
        guard let request else { throw KeyholdError.invalidInput("the new \(provider) key is missing: pipe it on stdin") }
        let secret = try Self.secret(from: request, provider: provider)
        guard plan.allows(provider) else {
            throw KeyholdError.invalidInput("tenant '\(name)' is on plan '\(plan.id)', which has no \(provider) keys to rotate")
        }
        let current = try await activeKey(tenant: name, provider: provider)
        let baseURL = try Self.checkBaseURL(request.baseURL ?? current.baseURL, provider: provider)
        let owner = try await baseURLOwner(baseURL, provider: provider, tenant: name)
        let check: KeyCheck? =
            request.validate ? await validator.validate(provider: provider, key: secret, keyBaseURL: baseURL, owner: owner) : nil
        if let check, !check.valid {
            try await recordAttempt(
                AuditEvent(
                    actor: actor, action: .keyRotate, tenant: name, provider: provider.rawValue, keyVersion: current.version,
                    fingerprint: vault.fingerprint(of: secret), outcome: .refused, details: ["reason": check.message]
                )
            )
            throw KeyholdError.invalidInput("the key was not rotated: \(check.message)")
        }
        if tenant.fallbackProvider == provider.rawValue {
            // The rollout's new unit runs on the tenant's own plan with the new key; the old one, on the fallback, stops.
            try await endFallback(tenant: tenant, provider: provider, actor: actor, reason: "the \(provider) key is being rotated", restart: false)
        }
        let vault = self.vault
        let (rotation, pending) = try await audited { tx in
            let version = try tx.nextKeyVersion(tenantID: tenant.id, provider: provider)
            let sealed = try vault.seal(secret, binding: KeyBinding(tenantID: tenant.id, provider: provider.rawValue, version: version))
            let pending = try tx.insertKeyVersion(
                tenantID: tenant.id, provider: provider, version: version, sealed: sealed, baseURL: baseURL, state: .pending
            )
            if let check {
                try tx.recordKeyHealth(keyID: pending.id, health: check.health, detail: check.message, at: pending.createdAt)
            }
            let rotation = try tx.insertRotation(
                tenantID: tenant.id, tenantName: name, provider: provider.rawValue, from: current.version, to: version,
                host: self.sandboxes.configuration.hostID
            )
            let event = AuditEvent(
                actor: actor, action: .keyRotate, tenant: name, provider: provider.rawValue, keyVersion: version, fingerprint: sealed.fingerprint,
                outcome: .started, details: ["from_version": String(current.version), "from_fingerprint": current.sealed.fingerprint]
            )
            return ((rotation, pending), [event])
        }
        return try await sandboxes.rollOut(rotation, tenant: tenant, pendingKey: pending, previousKey: current, actor: actor)
    }
}
