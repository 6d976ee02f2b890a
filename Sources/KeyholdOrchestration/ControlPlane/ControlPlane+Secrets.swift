import Foundation
public import KeyholdCore
import KeyholdStore
import KeyholdVault

extension ControlPlane {
    /// Stores a new version of a tenant's generic secret, bound to one host and header, and retires the older one.
    /// Its brokered sandboxes write it into their next request to that host (no restart); a sandbox started after
    /// this also finds its placeholder in `env`. Refused, with nothing stored, when the tenant's plan does not broker
    /// keys, or its egress policy does not allow the host.
    public func setSecret(
        tenant name: String, secret secretName: String, _ request: AdminAPI.SetSecret, actor: String
    ) async throws
        -> AdminAPI.Secret
    {
        // Its shape first (400); then what the tenant's state allows (404, 409); its address last (400), so that a host
        // the tenant may not reach anyway is answered as such.
        let requested = try SecretBinding.validated(
            name: secretName, destination: request.host, header: request.header, format: request.format, environment: request.env,
            allowPrivate: true)
        var binding = requested
        binding.allowPrivate = request.private ?? false
        guard !request.value.isEmpty, request.value.utf8.count <= 8192 else {
            throw KeyholdError.invalidInput("value: the secret must be 1 to 8192 bytes")
        }
        guard request.value.utf8.allSatisfy({ $0 >= 0x21 && $0 < 0x7f }) else {
            throw KeyholdError.invalidInput("value: printable ASCII without spaces only (it is written into an HTTP header)")
        }
        let vault = self.vault
        let plans = self.plans
        let secret = SecretBytes(Array(request.value.utf8))
        defer { secret.wipe() }
        let stored = try await audited { [binding] tx in
            let tenant = try tx.tenant(named: name)
            let plan = try plans.plan(tenant.plan)
            guard plan.isBrokered else {
                throw KeyholdError.conflict(
                    "tenant '\(name)' is on plan '\(plan.id)', which does not broker keys: secrets need a plan with key_delivery: brokered (`keyhold tenant set-plan \(name) byok-brokered`)"
                )
            }
            let policy = try SandboxService.egressPolicy(of: tenant, plan: plan, in: tx)
            guard case .allow(let ruleAllowsPrivate) = policy.decide(host: binding.host, port: binding.port, tls: true) else {
                throw KeyholdError.conflict(
                    "host '\(binding.destination)': not allowed by the egress policy of '\(name)': allow it first (`keyhold tenant allow-egress \(name) \(binding.destination)`)"
                )
            }
            try binding.checkAddress()
            if binding.allowPrivate && !ruleAllowsPrivate {
                throw KeyholdError.conflict(
                    "private: the egress entry for \(binding.destination) does not allow private addresses: allow it with --private first")
            }
            let (secretID, version) = try tx.prepareSecret(tenantID: tenant.id, name: secretName, binding: binding)
            let sealingBinding = KeyBinding(tenantID: tenant.id, provider: SecretBinding.sealingLabel(name: secretName), version: version)
            let sealed = try vault.seal(secret, binding: sealingBinding)
            let retired = try tx.insertSecretVersion(secretID: secretID, tenantID: tenant.id, name: secretName, version: version, sealed: sealed)
            var details = ["destination": binding.destination, "header": binding.header, "env": binding.environment]
            if !retired.isEmpty { details["retired_versions"] = retired.map(String.init).joined(separator: ",") }
            let event = AuditEvent(
                actor: actor, action: .secretSet, tenant: name, provider: SecretBinding.sealingLabel(name: secretName), keyVersion: version,
                fingerprint: sealed.fingerprint, details: details)
            guard let record = try tx.secrets(tenantID: tenant.id).first(where: { $0.name == secretName }) else {
                throw KeyholdError.failed("the secret '\(secretName)' was not stored")
            }
            return (record.api, [event])
        }
        await sandboxes.boundary.refreshSecrets(tenant: name)
        return stored
    }

    /// The tenant's secrets: bindings and newest versions, never a value.
    public func listSecrets(tenant name: String) async throws -> [AdminAPI.Secret] {
        try await store.read { tx in try tx.secrets(tenantID: try tx.tenant(named: name).id).map(\.api) }
    }

    /// Revokes every live version of a secret: its data keys are destroyed, and its sandboxes stop writing it from
    /// their next request on (requests to its host then go without it).
    public func revokeSecret(tenant name: String, secret secretName: String, actor: String) async throws -> AdminAPI.Secret {
        try SecretBinding.validate(name: secretName)
        let revoked = try await audited { tx in
            let tenant = try tx.tenant(named: name)
            let versions = try tx.revokeSecret(tenantID: tenant.id, name: secretName)
            guard !versions.isEmpty, let record = try tx.secrets(tenantID: tenant.id).first(where: { $0.name == secretName }) else {
                throw KeyholdError.notFound("tenant '\(name)' has no live secret '\(secretName)': see `keyhold secret list \(name)`")
            }
            let event = AuditEvent(
                actor: actor, action: .secretRevoke, tenant: name, provider: SecretBinding.sealingLabel(name: secretName),
                keyVersion: record.version, fingerprint: record.sealed.fingerprint,
                details: ["versions": versions.map(String.init).joined(separator: ","), "destination": record.binding.destination])
            return (record.api, [event])
        }
        await sandboxes.boundary.refreshSecrets(tenant: name)
        return revoked
    }
}
