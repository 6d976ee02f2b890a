import Foundation
import KeyholdCore
import KeyholdStore

/// The tenant and sandbox behind a proxy token, with the plan that governs them.
struct ProxyCaller: Sendable {
    var tenantID: Int64
    var tenantName: String
    var sandboxID: Int64?
    var plan: Plan
    /// Where usage alerts go: the tenant's webhook, else the plan's.
    var alertWebhook: String?

    /// A resolved caller, or why the token is refused.
    enum Resolution {
        case caller(ProxyCaller)
        case refused(String)
    }

    /// Reads a token's caller from the database (the exchange has already missed `cache`): unknown, revoked (its
    /// sandbox stopped), suspended or not on a managed plan is refused with the reason.
    /// - Parameters:
    ///   - cache: where the caller is remembered for the next requests.
    ///   - version: the lookups' version seen before this read (`LookupCache.currentVersion()`; nil: not remembered).
    static func resolve(token: String, store: Store, plans: PlanCatalog, cache: LookupCache, version: Int?) async throws -> Resolution {
        let tokenHash = TokenStore.hash(token)
        let found = try await store.read { tx -> (TokenOwner?, TenantRecord?) in
            guard let owner = try tx.proxyTokenOwner(token) else { return (nil, nil) }
            return (TokenOwner(tenantID: owner.tenantID, sandboxID: owner.sandboxID), try tx.tenant(id: owner.tenantID))
        }
        guard let owner = found.0, let tenant = found.1 else {
            return .refused("invalid proxy token: it is unknown or was revoked when its sandbox stopped")
        }
        guard tenant.state == .active else { return .refused("tenant '\(tenant.name)' is suspended") }
        guard let plan = try? plans.effectivePlan(for: tenant), plan.kind == .managed, plan.caps != nil else {
            return .refused("tenant '\(tenant.name)' is not on a managed plan")
        }
        let caller = ProxyCaller(
            tenantID: tenant.id, tenantName: tenant.name, sandboxID: owner.sandboxID, plan: plan,
            alertWebhook: tenant.alertWebhook ?? plan.alertWebhook
        )
        if let version { cache.remember(caller, for: tokenHash, version: version) }
        return .caller(caller)
    }

    private struct TokenOwner {
        var tenantID: Int64
        var sandboxID: Int64?
    }
}
