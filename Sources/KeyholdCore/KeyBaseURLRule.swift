import Foundation

/// Where a key's own base URL may point. A base URL is a destination the tenant chooses: its sandbox reaches it (BYOK)
/// and the daemon calls it (validation, health checks, the broker). So one that is not its provider's public API must
/// already be an egress destination an admin made: the plan's `egress_allow:` or the tenant's own rule
/// (`keyhold tenant allow-egress`), with the same scheme, host and port. The base URL itself opens nothing, and the rule
/// that lets it is shown (`tenant show`) and removed (`tenant deny-egress`) like any other.
public enum KeyBaseURLRule {
    /// Why `url` may not be the base URL of a key of `provider` for `tenant` on `plan`, or nil when it may.
    public static func refusal(of url: String, provider: Provider, plan: Plan, tenant: String, tenantRules: [EgressRule]) -> String? {
        let rule: EgressRule
        do {
            rule = try EgressRule.fromURL(url, allowPrivate: true)
        } catch {
            return "the key's \((error as? KeyholdError)?.message ?? "base URL is not an http:// or https:// URL with a host")"
        }
        if isOfficial(rule, provider: provider) { return nil }
        let rules = plan.sandbox.egressAllow + tenantRules
        if rules.contains(where: { $0.scheme == rule.scheme && $0.covers(host: rule.host, port: rule.port) }) { return nil }
        let official = provider.defaultBaseURL.map { " (\(provider)'s API is \($0))" } ?? ""
        return
            "the key's base URL \(rule) is not \(provider)'s public API\(official): the host's admin must allow it first (keyhold tenant allow-egress \(tenant) \(rule)\(rule.literalClass?.needsPrivateFlag == true ? " --private" : ""), or the plan's egress_allow)"
    }

    /// Whether a base URL's destination is its provider's public API.
    public static func isOfficial(_ rule: EgressRule, provider: Provider) -> Bool {
        guard let base = provider.defaultBaseURL, let official = try? EgressRule.fromURL(base) else { return false }
        return official.scheme == rule.scheme && official.host == rule.host && official.port == rule.port
    }
}
