import Foundation

/// Where a provider's API lives: scheme, host, port and the path its routes hang under.
struct UpstreamOrigin: Hashable, Sendable, CustomStringConvertible {
    var isTLS: Bool
    var host: String
    var port: Int
    /// Prefixed to the request's path (`""` for `https://api.openai.com`).
    var basePath: String
    /// The checked address to connect to instead of resolving `host` (a tenant-chosen upstream); TLS still names `host`.
    var connectAddress: String?

    /// Parses a base URL such as `https://api.anthropic.com` or `http://127.0.0.1:8080/prefix`.
    init?(baseURL: String) {
        guard let components = URLComponents(string: baseURL), let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.host, !host.isEmpty
        else { return nil }
        isTLS = scheme == "https"
        self.host = host
        port = components.port ?? (isTLS ? 443 : 80)
        basePath = components.path.hasSuffix("/") ? String(components.path.dropLast()) : components.path
    }

    /// Whether the host is an IPv4 or IPv6 address rather than a name.
    var isAddress: Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1
    }

    /// The `Host` header: the port only when it is not the scheme's default.
    var hostHeader: String { port == (isTLS ? 443 : 80) ? host : "\(host):\(port)" }

    var description: String { "\(isTLS ? "https" : "http")://\(hostHeader)\(basePath)" }
}
