import Foundation
public import KeyholdCore
import KeyholdStore
import KeyholdVault

extension ControlPlane {
    /// The reserved tenant that owns the platform's provider keys (used by the metering proxy only).
    public static let platformTenant = "platform"

    /// Stores a new version of one of the platform's own provider keys, for the managed plan's proxy.
    public func setPlatformKey(provider providerName: String, _ request: AdminAPI.SetKey, actor: String) async throws -> AdminAPI.Key {
        let provider = try Provider.named(providerName)
        guard provider == .openai || provider == .anthropic else {
            throw KeyholdError.invalidInput("the metering proxy speaks OpenAI's and Anthropic's APIs: platform keys are for openai or anthropic")
        }
        let secret = try Self.secret(from: request, provider: provider)
        if request.validate {
            let result = await validator.validate(provider: provider, key: secret, keyBaseURL: nil)
            guard result.valid else { throw KeyholdError.invalidInput("the platform key was not stored: \(result.message)") }
        }
        let vault = self.vault
        let platform = try TenantName(Self.platformTenant)
        return try await audited { tx in
            let tenant =
                try tx.allTenants().first { $0.name == Self.platformTenant }
                ?? tx.insertTenant(name: platform, plan: "-", agent: ["/bin/false"])
            let version = try tx.nextKeyVersion(tenantID: tenant.id, provider: provider)
            let sealed = try vault.seal(secret, binding: KeyBinding(tenantID: tenant.id, provider: provider.rawValue, version: version))
            let record = try tx.insertKeyVersion(
                tenantID: tenant.id, provider: provider, version: version, sealed: sealed, baseURL: nil)
            _ = try tx.retireKeyVersions(tenantID: tenant.id, provider: provider, olderThan: version)
            let event = AuditEvent(
                actor: actor, action: .platformKeySet, tenant: Self.platformTenant, provider: provider.rawValue, keyVersion: version,
                fingerprint: sealed.fingerprint, details: ["validated": request.validate ? "ok" : "skipped"]
            )
            return (record.api, [event])
        }
    }
}
