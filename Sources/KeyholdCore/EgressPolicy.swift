import Foundation

/// Everything one BYOK sandbox may reach, and why: its keys' provider hosts, its plan's `egress_allow:` and its
/// tenant's own entries (`keyhold tenant allow-egress`).
public struct EgressPolicy: Sendable, Equatable {
    /// One allowed destination and where it comes from (`key anthropic`, `plan byok`, `tenant`).
    public struct Entry: Sendable, Equatable {
        public var rule: EgressRule
        public var source: String

        public init(rule: EgressRule, source: String) {
            self.rule = rule
            self.source = source
        }
    }

    /// What the gateway does with one connection.
    public enum Decision: Sendable, Equatable {
        /// Connect; `allowPrivate` says whether the name may resolve to a loopback or private address.
        case allow(allowPrivate: Bool)
        case refuse(reason: String)
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// The policy of a sandbox.
    /// - Parameters:
    ///   - keyBaseURLs: each injected key's provider and base URL (its override, else the provider's public API).
    ///   - plan: the plan's `egress_allow:` entries.
    ///   - tenant: the tenant's own entries.
    public static func of(keyBaseURLs: [(provider: String, baseURL: String)], plan: Plan, tenant: [EgressRule]) -> EgressPolicy {
        var entries: [Entry] = []
        for (provider, baseURL) in keyBaseURLs {
            // Only a provider's public API comes with its key: a base URL elsewhere is reached through the admin's entry
            // that allowed it (`KeyBaseURLRule`), never opened by the tenant's choice of URL.
            guard let known = Provider(rawValue: provider), let rule = try? EgressRule.fromURL(baseURL),
                KeyBaseURLRule.isOfficial(rule, provider: known)
            else { continue }
            entries.append(Entry(rule: rule, source: "key \(provider)"))
        }
        entries += plan.sandbox.egressAllow.map { Entry(rule: $0, source: "plan \(plan.id)") }
        entries += tenant.map { Entry(rule: $0, source: "tenant") }
        return EgressPolicy(entries: entries)
    }

    /// Decides on a connection to `host:port`; `tls` says whether the client opened with a TLS handshake.
    public func decide(host: String, port: Int, tls: Bool) -> Decision {
        let matching = entries.filter { $0.rule.covers(host: host, port: port) }
        guard !matching.isEmpty else { return .refuse(reason: "not an allowed destination") }
        let usable = tls ? matching : matching.filter { $0.rule.scheme == .http }
        guard !usable.isEmpty else { return .refuse(reason: "plain HTTP needs an http:// entry (only HTTPS is allowed here)") }
        return .allow(allowPrivate: usable.contains { $0.rule.allowPrivate })
    }

    /// Whether some entry names `host` (exactly or through a wildcard), whatever its port: the sandbox's resolver then
    /// answers with the gateway's address.
    public func allowsName(_ host: String) -> Bool {
        entries.contains { $0.rule.literalClass == nil && $0.rule.covers(host: host, port: $0.rule.port) }
    }

    /// The exact names an agent resolves to its local gateway (its `/etc/hosts`): names, not wildcards or addresses.
    public var hostNames: [String] {
        var seen = Set<String>()
        return entries.map(\.rule).filter { !$0.isWildcard && $0.literalClass == nil }.map(\.host).filter { seen.insert($0).inserted }
    }

    /// The loopback addresses and ports the gateway listens on inside the sandbox: 127.0.0.1 on each named entry's
    /// port (wildcards included: the sandbox's resolver answers their names), and each loopback-address entry on
    /// its own address.
    public func listenAddresses(proxyPort: Int) -> [LoopbackAddress] {
        var result = [LoopbackAddress(ip: "127.0.0.1", port: proxyPort)]
        for rule in entries.map(\.rule) {
            let address: LoopbackAddress
            if let literal = rule.literalClass {
                guard literal == .loopback, IPLiteral.ipv4(rule.host) != nil else { continue }
                address = LoopbackAddress(ip: rule.host, port: rule.port)
            } else {
                address = LoopbackAddress(ip: "127.0.0.1", port: rule.port)
            }
            if !result.contains(address) { result.append(address) }
        }
        return result
    }

    /// The entries as `keyhold sandbox status` and the API show them.
    public var descriptions: [String] {
        entries.map { "\($0.rule)\($0.rule.allowPrivate ? " (private)" : "") from \($0.source)" }
    }
}

/// An IPv4 loopback address and port inside a sandbox's network namespace.
public struct LoopbackAddress: Sendable, Hashable, CustomStringConvertible {
    public var ip: String
    public var port: Int
    /// UDP (the sandbox's resolver) rather than TCP.
    public var datagram: Bool

    public init(ip: String, port: Int, datagram: Bool = false) {
        self.ip = ip
        self.port = port
        self.datagram = datagram
    }

    public var description: String { "\(ip):\(port)\(datagram ? "/udp" : "")" }
}

extension EgressRule {
    /// The rule a provider base URL needs (`https://api.anthropic.com` → `api.anthropic.com:443`), never private.
    /// - Parameter allowPrivate: whether a loopback or private address is read (not refused); nothing is opened by it.
    public static func fromURL(_ url: String, allowPrivate: Bool = false) throws -> EgressRule {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), let host = components.host,
            !host.isEmpty, scheme == "https" || scheme == "http"
        else {
            throw KeyholdError.invalidInput("base URL '\(url.prefix(80))': expected an http:// or https:// URL with a host")
        }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        let hostText = host.contains(":") ? "[\(host)]" : host
        return try parse("\(scheme)://\(hostText):\(port)", allowPrivate: allowPrivate, field: "base URL")
    }
}
