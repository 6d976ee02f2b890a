import Foundation
public import KeyholdCore
import KeyholdStore
import KeyholdVault

extension ControlPlane {
    /// Stores a new version of a tenant's provider key, after validating it with the provider if asked.
    ///
    /// Older active versions are retired. The key is never echoed back; the answer carries its fingerprint.
    public func setKey(tenant name: String, provider providerName: String, _ request: AdminAPI.SetKey, actor: String) async throws -> AdminAPI.Key {
        let provider = try Provider.named(providerName)
        let secret = try Self.secret(from: request, provider: provider)
        let baseURL = try Self.checkBaseURL(request.baseURL, provider: provider)
        let tenant = try await store.read { tx in try tx.tenant(named: name) }
        let plan = try plans.plan(tenant.plan)
        guard plan.kind == .byok else {
            throw KeyholdError.conflict(
                "tenant '\(name)' is on the managed plan '\(plan.id)': its agent uses Keyhold's proxy and needs no provider key; move it to a BYOK plan first"
            )
        }
        guard plan.allows(provider) else {
            throw KeyholdError.invalidInput(
                "plan '\(plan.id)' does not allow \(provider) keys (allowed: \(plan.providers.map(\.rawValue).joined(separator: ", ")))")
        }
        let owner = try await baseURLOwner(baseURL, provider: provider, tenant: name)
        let check: KeyCheck? =
            request.validate ? await validator.validate(provider: provider, key: secret, keyBaseURL: baseURL, owner: owner) : nil
        if let check, !check.valid {
            try await recordAttempt(
                AuditEvent(
                    actor: actor, action: .keySet, tenant: name, provider: provider.rawValue, fingerprint: vault.fingerprint(of: secret),
                    outcome: .refused, details: ["reason": check.message]
                )
            )
            throw KeyholdError.invalidInput("the key was not stored: \(check.message)")
        }
        let vault = self.vault
        let stored = try await audited { tx in
            let tenant = try tx.tenant(named: name)
            try Self.refuseEnvironmentClash(provider, tenant: tenant, in: tx)
            let version = try tx.nextKeyVersion(tenantID: tenant.id, provider: provider)
            let binding = KeyBinding(tenantID: tenant.id, provider: provider.rawValue, version: version)
            let sealed = try vault.seal(secret, binding: binding)
            var record = try tx.insertKeyVersion(
                tenantID: tenant.id, provider: provider, version: version, sealed: sealed, baseURL: baseURL
            )
            if let check {
                try tx.recordKeyHealth(keyID: record.id, health: check.health, detail: check.message, at: record.createdAt)
                (record.health, record.healthDetail, record.validatedAt) = (check.health, check.message, record.createdAt)
            }
            let retired = try tx.retireKeyVersions(tenantID: tenant.id, provider: provider, olderThan: version)
            var details = ["validated": check == nil ? "skipped" : "ok"]
            if let baseURL { details["base_url"] = baseURL }
            if !retired.isEmpty { details["retired_versions"] = retired.map(String.init).joined(separator: ",") }
            let event = AuditEvent(
                actor: actor, action: .keySet, tenant: name, provider: provider.rawValue, keyVersion: version, fingerprint: sealed.fingerprint,
                details: details
            )
            return (record.api, [event])
        }
        if tenant.fallbackProvider == provider.rawValue {
            try await endFallback(tenant: tenant, provider: provider, actor: actor, reason: "a new \(provider) key was set")
        }
        return stored
    }

    /// Refuses a key whose provider writes an environment variable that another provider's live key of the tenant
    /// already writes: the agent would get one of them silently, depending on the order of injection.
    static func refuseEnvironmentClash(_ provider: Provider, tenant: TenantRecord, in tx: StoreTransaction) throws {
        let live = try tx.keyVersions(tenantID: tenant.id).filter { $0.state == .active || $0.state == .pending }
        guard let clash = provider.environmentClash(among: live.map(\.provider)) else { return }
        throw KeyholdError.conflict(
            "tenant '\(tenant.name)' has a live \(clash.provider) key, and \(provider) and \(clash.provider) keys both set \(clash.variables.joined(separator: " and ")) in the agent's environment: revoke the \(clash.provider) key first (`keyhold key revoke \(tenant.name) \(clash.provider)`), or keep one tenant per OpenAI-style endpoint"
        )
    }

    public func listKeys(tenant name: String) async throws -> [AdminAPI.Key] {
        try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            return try tx.keyVersions(tenantID: tenant.id).map(\.api)
        }
    }

    /// Refuses a key's own base URL that is not its provider's API and that no admin's egress rule allows
    /// (`KeyBaseURLRule`): a base URL is a destination the tenant chooses for its sandbox and for the daemon.
    /// - Returns: whose key it is, with the rules that reach its base URL; nil without a base URL.
    func baseURLOwner(_ url: String?, provider: Provider, tenant name: String) async throws -> KeyValidator.Owner? {
        guard let url else { return nil }
        let (tenant, rules) = try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            return (tenant, try tx.egressRules(tenantID: tenant.id))
        }
        let plan = try plans.plan(tenant.plan)
        if let refusal = KeyBaseURLRule.refusal(of: url, provider: provider, plan: plan, tenant: name, tenantRules: rules) {
            throw KeyholdError.invalidInput(refusal)
        }
        return KeyValidator.Owner(tenant: name, rules: rules)
    }

    /// Asks the provider about a stored key. Its base URL is checked again: the admin's rule may have gone since.
    func checkKey(_ secret: SecretBytes, provider: Provider, baseURL: String?, tenant name: String) async throws -> KeyCheck {
        let owner: KeyValidator.Owner?
        do {
            owner = try await baseURLOwner(baseURL, provider: provider, tenant: name)
        } catch let refusal as KeyholdError where refusal.code == .invalidInput {
            return KeyCheck(health: .unreachable, status: nil, message: "\(refusal.message); the key was not checked")
        }
        return await validator.validate(provider: provider, key: secret, keyBaseURL: baseURL, owner: owner)
    }

    /// Decrypts the tenant's active key for a provider and asks the provider whether it works.
    public func validateKey(tenant name: String, provider providerName: String, actor: String) async throws -> AdminAPI.Validation {
        let provider = try Provider.named(providerName)
        let record = try await activeKey(tenant: name, provider: provider)
        let secret = try vault.open(record.sealed, binding: record.binding)
        defer { secret.wipe() }
        let result = try await checkKey(secret, provider: provider, baseURL: record.baseURL, tenant: name)
        try await recordAttempt(
            AuditEvent(
                actor: actor, action: .keyValidate, tenant: name, provider: provider.rawValue, keyVersion: record.version,
                fingerprint: record.sealed.fingerprint, outcome: result.valid ? .ok : .failed,
                details: ["result": result.message, "health": result.health.rawValue]
            )
        )
        try await recordHealth(result, of: record.checked(tenant: name), actor: actor)
        return AdminAPI.Validation(
            provider: provider.rawValue, version: record.version, fingerprint: record.sealed.fingerprint, valid: result.valid,
            httpStatus: result.status, message: result.message, health: result.health.rawValue
        )
    }

    /// Revokes a provider key (every live version, or one): stops the sandboxes holding it and destroys the data keys.
    public func revokeKey(tenant name: String, provider providerName: String, version: Int?, actor: String) async throws -> AdminAPI.Revoked {
        let provider = try Provider.named(providerName)
        let tenant = try await store.read { tx in try tx.tenant(named: name) }
        let targets = try await store.read { tx in
            try tx.keyVersions(tenantID: tenant.id, provider: provider).filter { key in
                key.state != .revoked && (version == nil || key.version == version)
            }
        }
        guard !targets.isEmpty else {
            if let version {
                throw KeyholdError.notFound("tenant '\(name)' has no live \(provider) key version \(version): see `keyhold key list \(name)`")
            }
            throw KeyholdError.notFound("tenant '\(name)' has no live \(provider) key: see `keyhold key list \(name)`")
        }
        let targetVersions = Set(targets.map { "\(provider.rawValue):\($0.version)" })
        let stopped = try await sandboxes.stopUsing(keyVersions: targetVersions, tenant: tenant, actor: actor, reason: "key revoked")
        try await audited { tx in
            var events: [AuditEvent] = []
            for key in targets {
                try tx.revokeKeyVersion(key.id)
                events.append(
                    AuditEvent(
                        actor: actor, action: .keyRevoke, tenant: name, provider: provider.rawValue, keyVersion: key.version,
                        fingerprint: key.sealed.fingerprint, details: stopped.isEmpty ? [:] : ["stopped_units": stopped.joined(separator: ",")]
                    )
                )
            }
            return ((), events)
        }
        var stoppedAll = stopped
        if tenant.fallbackProvider == provider.rawValue {
            // The fallback stood in for this key: with the key gone it ends too, and an agent running on the platform's
            // key stops (it would otherwise stay on it with nothing left to check).
            try await endFallback(tenant: tenant, provider: provider, actor: actor, reason: "the \(provider) key was revoked", restart: false)
            if try await store.read({ tx in try !tx.liveSandboxes(tenantID: tenant.id).isEmpty }) {
                stoppedAll += try await sandboxes.stop(tenant: name, actor: actor).map(\.unit)
            }
        }
        try store.checkpointWAL()
        return AdminAPI.Revoked(provider: provider.rawValue, versions: targets.map(\.version).sorted(), stoppedSandboxes: stoppedAll)
    }

    func activeKey(tenant name: String, provider: Provider) async throws -> KeyVersionRecord {
        try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            guard let key = try tx.activeKeys(tenantID: tenant.id).first(where: { $0.provider == provider }) else {
                throw KeyholdError.notFound("tenant '\(name)' has no active \(provider) key: set one with `keyhold key set \(name) \(provider)`")
            }
            return key
        }
    }

    /// The key of a request, checked for its provider and moved into a wiped-on-release buffer.
    static func secret(from request: AdminAPI.SetKey, provider: Provider) throws -> SecretBytes {
        var raw = Array(request.key.utf8)
        defer { SecretBytes.wipe(&raw) }
        var normalized = try SecretKeyInput.normalize(raw, provider: provider, skipShapeCheck: request.skipShapeCheck)
        defer { SecretBytes.wipe(&normalized) }
        return SecretBytes(normalized)
    }

    static func checkBaseURL(_ url: String?, provider: Provider) throws -> String? {
        guard let url, !url.isEmpty else {
            if provider == .openaiCompatible {
                throw KeyholdError.invalidInput("an openai-compatible key needs its endpoint: pass --base-url https://api.groq.com/openai")
            }
            return nil
        }
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw KeyholdError.invalidInput("--base-url '\(url.prefix(80))' is not an http(s) URL")
        }
        return url.hasSuffix("/") ? String(url.dropLast()) : url
    }
}
