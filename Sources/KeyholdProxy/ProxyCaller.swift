import Foundation
import KeyholdCore
import KeyholdStore

/// The tenant and sandbox behind a proxy token or a placeholder, with the plan that governs them.
struct ProxyCaller: Sendable {
    var tenantID: Int64
    var tenantName: String
    var sandboxID: Int64?
    var plan: Plan
    /// Where usage alerts go: the tenant's webhook, else the plan's.
    var alertWebhook: String?
    /// For a placeholder: the tenant's key it stands for (sealed), where that key goes, and the tenant's own caps.
    var brokered: BrokeredKey?

    /// The caps a request is checked against: the tenant's own on a brokered key, the plan's on the managed path.
    var caps: Caps? { brokered?.caps ?? plan.caps }

    /// A resolved caller, or why the token is refused.
    enum Resolution {
        case caller(ProxyCaller)
        case refused(String)
    }

    /// The one answer to a placeholder that is made up, revoked (its sandbox stopped), another sandbox's or another
    /// tenant's: an agent learns nothing about which.
    static let invalidPlaceholder = "invalid API key: it is not a key of this sandbox"
    /// The managed proxy's answer to a token it does not know (a placeholder outside its sandbox gets the same).
    static let unknownToken = "invalid proxy token: it is unknown or was revoked when its sandbox stopped"

    /// Reads a token's caller from the database (the exchange has already missed `cache`): unknown, revoked (its
    /// sandbox stopped), suspended or not on a managed plan is refused with the reason. A placeholder resolves only
    /// for a tenant on a brokered plan with an active key of the placeholder's provider.
    /// - Parameters:
    ///   - cache: where the caller is remembered for the next requests.
    ///   - version: the lookups' version seen before this read (`LookupCache.currentVersion()`; nil: not remembered).
    ///   - upstreamBaseURLs: where each provider is when a key names no base URL (the daemon's overrides).
    ///   - staticHosts: names resolved before DNS when a key's base URL is checked (the operator's `--egress-hosts`).
    static func resolve(
        token: String, store: Store, plans: PlanCatalog, cache: LookupCache, version: Int?, upstreamBaseURLs: [Provider: String] = [:],
        staticHosts: [String: [String]] = [:]
    ) async throws -> Resolution {
        let tokenHash = TokenStore.hash(token)
        let found = try await store.read { tx -> (TokenOwner?, TenantRecord?, KeyVersionRecord?, [EgressRule]) in
            guard let owner = try tx.proxyTokenOwner(token) else { return (nil, nil, nil, []) }
            let tenant = try tx.tenant(id: owner.tenantID)
            let key = try owner.provider.flatMap { provider in try tx.activeKeys(tenantID: owner.tenantID).first { $0.provider == provider } }
            let rules = key?.baseURL == nil ? [] : try tx.egressRules(tenantID: owner.tenantID)
            return (TokenOwner(tenantID: owner.tenantID, sandboxID: owner.sandboxID, provider: owner.provider), tenant, key, rules)
        }
        guard let owner = found.0, let tenant = found.1 else { return .refused(unknownToken) }
        var caller: ProxyCaller
        if let provider = owner.provider {
            guard tenant.state == .active, let plan = try? plans.effectivePlan(for: tenant), plan.allows(provider),
                let key = found.2, let brokering = provider.brokering,
                var origin = UpstreamOrigin(baseURL: key.baseURL ?? upstreamBaseURLs[provider] ?? provider.defaultBaseURL ?? "")
            else { return .refused(invalidPlaceholder) }
            // The tenant chose this upstream: the daemon reaches it only as the egress gateway would let the sandbox.
            var upstreamRefusal: String?
            if let base = key.baseURL,
                let refusal = KeyBaseURLRule.refusal(of: base, provider: provider, plan: plan, tenant: tenant.name, tenantRules: found.3)
            {
                // The admin's rule that let this base URL was removed since the key was set.
                upstreamRefusal = refusal
            } else if key.baseURL != nil {
                switch await UpstreamAddressCheck.check(origin: origin, tenant: tenant.name, rules: found.3, staticHosts: staticHosts) {
                case .allowed(let address): origin.connectAddress = address
                case .refused(let reason): upstreamRefusal = reason
                }
            }
            var brokered = BrokeredKey(
                record: key, brokering: brokering, origin: origin, isClientBaseURL: key.baseURL != nil,
                caps: (tenant.keyCaps ?? KeyCaps()).caps(defaultMaxTokens: BrokeredKey.defaultMaxTokens))
            brokered.upstreamRefusal = upstreamRefusal
            caller = ProxyCaller(
                tenantID: tenant.id, tenantName: tenant.name, sandboxID: owner.sandboxID, plan: plan,
                alertWebhook: tenant.alertWebhook ?? plan.alertWebhook)
            caller.brokered = brokered
        } else {
            guard tenant.state == .active else { return .refused("tenant '\(tenant.name)' is suspended") }
            guard let plan = try? plans.effectivePlan(for: tenant), plan.kind == .managed, plan.caps != nil else {
                return .refused("tenant '\(tenant.name)' is not on a managed plan")
            }
            caller = ProxyCaller(
                tenantID: tenant.id, tenantName: tenant.name, sandboxID: owner.sandboxID, plan: plan,
                alertWebhook: tenant.alertWebhook ?? plan.alertWebhook
            )
        }
        if let version { cache.remember(caller, for: tokenHash, version: version) }
        return .caller(caller)
    }

    private struct TokenOwner {
        var tenantID: Int64
        var sandboxID: Int64?
        var provider: Provider?
    }
}

/// The tenant's key a placeholder stands for: still sealed (it is opened for each request, and wiped after).
struct BrokeredKey: Sendable {
    var record: KeyVersionRecord
    var brokering: Brokering
    /// The provider's API, or the key's own base URL.
    var origin: UpstreamOrigin
    /// Whether `origin` is the key's own base URL, which is what the provider's clients take as theirs (OpenAI's end
    /// in `/v1`): the agent's path then loses its base path (`/v1`) before it is added to the origin's. The provider's
    /// public API (`https://api.openai.com`) takes the agent's whole path.
    var isClientBaseURL: Bool
    var caps: Caps
    /// Why the key's own base URL may not be reached from the host's network, if it may not.
    var upstreamRefusal: String?
    /// When the base URL's addresses were checked (they are checked again after `UpstreamAddressCheck.lifetime`).
    var checkedAt = ContinuousClock.now

    var provider: Provider { record.provider }

    /// The request's path and query as the upstream takes them (after `origin.basePath`).
    func upstreamURI(_ uri: String) -> String {
        Self.upstreamURI(uri, agentBasePath: brokering.agentBasePath, isClientBaseURL: isClientBaseURL)
    }

    /// `uri` without the agent's base path (a whole segment) when the upstream is a client's base URL.
    static func upstreamURI(_ uri: String, agentBasePath base: String, isClientBaseURL: Bool) -> String {
        guard isClientBaseURL, !base.isEmpty, uri.hasPrefix(base) else { return uri }
        let rest = uri.dropFirst(base.count)
        return rest.isEmpty || rest.first == "/" || rest.first == "?" ? String(rest) : uri
    }

    /// Whether this resolution is too old to use: its upstream's addresses are due for a new check (a refusal is checked
    /// again within seconds, so that an admin's allow takes effect at once).
    var isStale: Bool {
        isClientBaseURL && ContinuousClock.now - checkedAt > (upstreamRefusal == nil ? UpstreamAddressCheck.lifetime : .seconds(2))
    }

    /// The output reserved for a metered request that states no maximum.
    static let defaultMaxTokens = 4096
}
