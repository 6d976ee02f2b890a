import Foundation
import KeyholdCore
import KeyholdProxy
import KeyholdStore
import KeyholdVault

/// A key version whose health is being recorded: what the audit record and the webhook name.
struct CheckedKey: Sendable {
    var keyID: Int64
    var tenant: String
    var provider: Provider
    var version: Int
    var fingerprint: String?
}

extension ControlPlane {
    /// The actor of what key health checks do on their own.
    static let healthActor = "keyhold-health"

    /// Records a check's verdict on a key. On a change of health: a `key.health` audit record, a POST to the tenant's
    /// alert webhook, and the plan's `on_invalid_key` action (or, once the key works again, the end of its fallback).
    func recordHealth(_ check: KeyCheck, of key: CheckedKey, actor: String) async throws {
        Telemetry.keyCheck(provider: key.provider.rawValue, health: check.health.rawValue)
        let now = Timestamp.now()
        let (previous, tenant) =
            try await audited { tx -> ((KeyHealth?, TenantRecord)?, [AuditEvent]) in
                let tenant = try tx.tenant(named: key.tenant)
                let recorded = try tx.recordKeyHealth(keyID: key.keyID, health: check.health, detail: check.message, at: now)
                guard recorded.found, recorded.previous != check.health else { return (recorded.found ? (recorded.previous, tenant) : nil, []) }
                var details = ["health": check.health.rawValue, "detail": check.message]
                if let previous = recorded.previous { details["previous"] = previous.rawValue }
                if let status = check.status { details["http_status"] = String(status) }
                let event = AuditEvent(
                    actor: actor, action: .keyHealth, tenant: key.tenant, provider: key.provider.rawValue, keyVersion: key.version,
                    fingerprint: key.fingerprint, outcome: AuditOutcome(check.health), details: details)
                return ((recorded.previous, tenant), [event])
            } ?? (nil, nil)
        guard let tenant, previous != check.health else { return }
        let plan = try plans.plan(tenant.plan)
        if let webhook = tenant.alertWebhook ?? plan.alertWebhook {
            let payload: [String: String] = [
                "event": "key.health", "tenant": key.tenant, "provider": key.provider.rawValue, "version": String(key.version),
                "fingerprint": key.fingerprint ?? "", "health": check.health.rawValue, "previous": previous?.rawValue ?? "unknown",
                "detail": check.message, "time": now,
            ]
            let webhooks = self.webhooks
            Task { await webhooks.post(payload, to: webhook, about: "key health of \(key.tenant)", tenant: key.tenant) }
        }
        if check.health == .invalid {
            try await actOnInvalidKey(key, tenant: tenant, plan: plan)
        } else if check.valid, tenant.fallbackProvider == key.provider.rawValue {
            try await endFallback(tenant: tenant, provider: key.provider, actor: Self.healthActor, reason: "the \(key.provider) key works again")
        }
    }

    /// The plan's `on_invalid_key`: keep the agent, stop it, or restart it on the managed fallback.
    private func actOnInvalidKey(_ key: CheckedKey, tenant: TenantRecord, plan: Plan) async throws {
        let running = try await store.read { tx in try !tx.liveSandboxes(tenantID: tenant.id).isEmpty }
        switch plan.keyHealth.onInvalidKey {
        case .keep:
            return
        case .stop:
            guard running else { return }
            _ = try await sandboxes.stop(tenant: tenant.name, actor: Self.healthActor)
        case .fallbackManaged:
            let fallback = plan.keyHealth.fallbackPlan ?? ""
            let bound = plan.keyHealth.fallbackMaxPerMonth
            let changed = try await audited { tx in
                // A tenant can make its own key invalid on purpose: the moves onto the platform's key are counted by
                // the month, and past the plan's bound the agent keeps its invalid key.
                let moves = try tx.auditRecords(tenantID: tenant.id, action: AuditAction.keyFallback.rawValue, since: Self.monthStart())
                    .filter { $0.event.outcome == AuditOutcome.managed.rawValue }.count
                if moves >= bound {
                    let refused = AuditEvent(
                        actor: Self.healthActor, action: .keyFallback, tenant: tenant.name, provider: key.provider.rawValue,
                        keyVersion: key.version, fingerprint: key.fingerprint, outcome: .refused,
                        details: [
                            "plan": fallback, "reason": "the plan allows \(bound) fallbacks a month (fallback_max_per_month), all used",
                            "fallbacks_this_month": String(moves),
                        ])
                    return (false, [refused])
                }
                guard try tx.setFallbackProvider(tenantID: tenant.id, provider: key.provider.rawValue) else { return (false, []) }
                let event = AuditEvent(
                    actor: Self.healthActor, action: .keyFallback, tenant: tenant.name, provider: key.provider.rawValue, keyVersion: key.version,
                    fingerprint: key.fingerprint, outcome: .managed,
                    details: [
                        "plan": fallback, "reason": "the \(key.provider) key is invalid", "restarted": String(running),
                        "fallbacks_this_month": String(moves + 1), "fallback_max_per_month": String(bound),
                    ])
                return (true, [event])
            }
            if changed && running { _ = try await sandboxes.restart(tenant: tenant.name, actor: Self.healthActor) }
        }
    }

    /// The first moment of this calendar month (UTC), as audit times are written.
    static func monthStart(_ now: Date = Date()) -> String {
        String(Timestamp.format(now).prefix(7)) + "-01T00:00:00.000Z"
    }

    /// Moves a tenant's agent back from the managed fallback to its own keys (restarting it if it runs).
    func endFallback(tenant: TenantRecord, provider: Provider, actor: String, reason: String, restart: Bool = true) async throws {
        let running = try await store.read { tx in try !tx.liveSandboxes(tenantID: tenant.id).isEmpty }
        let changed = try await audited { tx in
            guard try tx.setFallbackProvider(tenantID: tenant.id, provider: nil) else { return (false, []) }
            let event = AuditEvent(
                actor: actor, action: .keyFallback, tenant: tenant.name, provider: provider.rawValue, outcome: .byok,
                details: ["plan": tenant.plan, "reason": reason, "restarted": String(restart && running)])
            return (true, [event])
        }
        if changed && restart && running { _ = try await sandboxes.restart(tenant: tenant.name, actor: actor) }
    }
}

extension ControlPlane {
    /// A scheduled check of one key: decrypted in memory, sent to its provider, wiped; the verdict recorded.
    func revalidate(_ candidate: KeyHealthCandidate) async throws {
        guard let record = try await store.read({ tx in try tx.keyVersion(id: candidate.keyID) }), record.state == .active else { return }
        let secret = try vault.open(record.sealed, binding: record.binding)
        defer { secret.wipe() }
        let check = try await checkKey(secret, provider: record.provider, baseURL: record.baseURL, tenant: candidate.tenantName)
        try await recordHealth(check, of: record.checked(tenant: candidate.tenantName), actor: Self.healthActor)
    }
}
