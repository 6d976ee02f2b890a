import Foundation
import GRDB
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

    /// Resolves a token: unknown, revoked (its sandbox stopped) or suspended → nil with the reason.
    /// A resolved caller, or why the token is refused.
    enum Resolution {
        case caller(ProxyCaller)
        case refused(String)
    }

    /// - Parameters:
    ///   - cache: answers for tokens already resolved while the database is unchanged.
    ///   - version: the database's data version read by `cache` for this request (nil: do not cache).
    static func resolve(token: String, store: Store, plans: PlanCatalog, cache: LookupCache? = nil, version: Int? = nil) async throws -> Resolution {
        let tokenHash = TokenStore.hash(token)
        if let cache, let version, let cached = cache.caller(tokenHash, version: version) { return .caller(cached) }
        let found = try await store.database.read { db -> (TokenOwner?, TenantRecord?) in
            guard let owner = try TokenStore.proxyTokenOwner(token, in: db) else { return (nil, nil) }
            return (TokenOwner(tenantID: owner.tenantID, sandboxID: owner.sandboxID), try Store.tenant(id: owner.tenantID, in: db))
        }
        guard let owner = found.0, let tenant = found.1 else {
            return .refused("invalid proxy token: it is unknown or was revoked when its sandbox stopped")
        }
        guard tenant.state == "active" else { return .refused("tenant '\(tenant.name)' is suspended") }
        guard let plan = try? plans.plan(tenant.plan), plan.kind == .managed, plan.caps != nil else {
            return .refused("tenant '\(tenant.name)' is not on a managed plan")
        }
        let caller = ProxyCaller(
            tenantID: tenant.id, tenantName: tenant.name, sandboxID: owner.sandboxID, plan: plan,
            alertWebhook: tenant.alertWebhook ?? plan.alertWebhook
        )
        if let cache, let version { cache.remember(caller, for: tokenHash, version: version) }
        return .caller(caller)
    }

    private struct TokenOwner {
        var tenantID: Int64
        var sandboxID: Int64?
    }
}
