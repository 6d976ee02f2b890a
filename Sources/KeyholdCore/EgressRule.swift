import Foundation

/// One destination a BYOK sandbox may reach: `[http://]HOST[:PORT]`.
///
/// HTTPS is the default and stays end to end: Keyhold routes on the destination's name (a CONNECT target or the
/// TLS SNI) and never reads the bytes. Plain HTTP needs an explicit `http://` entry. A host may be a DNS name, a
/// wildcard over a registrable domain (`*.example.com`: its subdomains, not itself), or an IP address. A loopback or
/// private address, or a name that resolves to one, is reachable only through a rule with `allowPrivate`: without
/// it the rule would open the host's own network (databases, admin ports) to the tenant. Link-local addresses
/// (cloud instance metadata) are never reachable.
public struct EgressRule: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Scheme: String, Sendable, Codable { case https, http }

    public var scheme: Scheme
    /// Lowercased DNS name, `*.` wildcard, or IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    /// Whether the destination may be loopback or private (an explicit choice of the hosting provider).
    public var allowPrivate: Bool

    public init(scheme: Scheme, host: String, port: Int, allowPrivate: Bool) {
        self.scheme = scheme
        self.host = host
        self.port = port
        self.allowPrivate = allowPrivate
    }

    /// The canonical text: `host:port` for HTTPS, `http://host:port` for plain HTTP.
    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return (scheme == .http ? "http://" : "") + "\(hostText):\(port)"
    }

    /// Whether the host is a `*.` wildcard.
    public var isWildcard: Bool { host.hasPrefix("*.") }

    /// The class of the host when it is an IP address, nil for names.
    public var literalClass: AddressClass? { AddressClass.of(literal: host) }

    /// Whether a connection to `host:port` is covered (names compared case-insensitively; a wildcard covers subdomains).
    public func covers(host candidate: String, port candidatePort: Int) -> Bool {
        guard candidatePort == port else { return false }
        let name = Self.normalized(candidate)
        if isWildcard { return name.hasSuffix(String(host.dropFirst())) && name.count > host.count - 1 }
        return name == host
    }

    /// The name a connection asks for, as the gateway checks and resolves it: lowercase ASCII letters, digits, hyphens and
    /// dots (no trailing dot), or an IP address (IPv6 without brackets); nil for anything else. What is checked is
    /// exactly what is resolved: no NUL byte that a C resolver would stop at, no Unicode that lowercases into ASCII.
    public static func canonicalDestination(_ raw: String) -> String? {
        var name = raw
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if AddressClass.of(literal: name) != nil { return name.lowercased() }
        guard name.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard (1...253).contains(name.count),
            name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d || $0 == 0x2e })
        else { return nil }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard labels.allSatisfy({ (1...63).contains($0.count) }) else { return nil }
        return name
    }

    static func normalized(_ host: String) -> String {
        var name = host.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        if name.hasPrefix("[") && name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        return name
    }

    /// Parses an entry as an admin writes it.
    /// - Parameters:
    ///   - field: names the entry in errors (`egress_allow[2]`, `destination`).
    ///   - allowPrivate: the explicit flag that lets the rule reach a loopback or private address.
    /// - Throws: `KeyholdError.invalidInput` naming the field and why.
    public static func parse(_ text: String, allowPrivate: Bool = false, field: String = "destination") throws -> EgressRule {
        let shown = "'\(text.prefix(80))'"
        func bad(_ why: String) -> KeyholdError { KeyholdError.invalidInput("\(field) \(shown): \(why)") }
        var rest = text.trimmingCharacters(in: .whitespaces)
        guard !rest.isEmpty else { throw bad("empty: expected HOST[:PORT] or http://HOST[:PORT]") }
        var scheme = Scheme.https
        if rest.lowercased().hasPrefix("http://") {
            scheme = .http
            rest = String(rest.dropFirst(7))
        } else if rest.lowercased().hasPrefix("https://") {
            rest = String(rest.dropFirst(8))
        } else if rest.contains("://") {
            throw bad("only http:// and https:// destinations exist")
        }
        if rest.hasSuffix("/") { rest.removeLast() }
        guard !rest.contains("/"), !rest.contains("@"), !rest.contains("?"), !rest.contains("#") else {
            throw bad("a destination is a host and a port, without a path, user or query")
        }
        var host = rest
        var port = scheme == .https ? 443 : 80
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw bad("an IPv6 address needs its closing ']'") }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { throw bad("expected ':PORT' after the IPv6 address") }
                port = try parsePort(String(after.dropFirst()), bad: bad)
            }
            guard IPLiteral.ipv6(host) != nil else { throw bad("'\(host.prefix(45))' is not an IPv6 address") }
        } else if let colon = rest.lastIndex(of: ":") {
            guard rest.firstIndex(of: ":") == colon else { throw bad("write an IPv6 address in brackets, e.g. [2001:db8::1]:443") }
            host = String(rest[..<colon])
            port = try parsePort(String(rest[rest.index(after: colon)...]), bad: bad)
        }
        host = normalized(host)
        let rule = EgressRule(scheme: scheme, host: host, port: port, allowPrivate: allowPrivate)
        if let literal = rule.literalClass {
            if literal.isNeverReachable {
                throw bad("\(host) is a \(literal.rawValue) address, never reachable from a sandbox (link-local serves cloud instance credentials)")
            }
            if literal.needsPrivateFlag && !allowPrivate {
                throw bad(
                    "\(host) is a \(literal.rawValue) address on the host's own network: allow it only on purpose, with --private (allow_private: true in a plan)"
                )
            }
            return rule
        }
        try checkName(host, bad: bad)
        if rule.isWildcard && allowPrivate {
            throw bad(
                "a wildcard cannot reach private addresses: name exactly the host that may (any subdomain could be pointed at the host's network)")
        }
        return rule
    }

    private static func parsePort(_ text: String, bad: (String) -> KeyholdError) throws -> Int {
        guard let port = Int(text), (1...65535).contains(port), text.allSatisfy(\.isNumber) else {
            throw bad("the port must be a number from 1 to 65535")
        }
        return port
    }

    private static func checkName(_ host: String, bad: (String) -> KeyholdError) throws {
        var name = host
        if host.hasPrefix("*.") {
            name = String(host.dropFirst(2))
            guard name.split(separator: ".").count >= 2 else {
                throw bad("a wildcard must cover a registrable domain (*.example.com), not a whole top-level domain or everything")
            }
        }
        guard host != "*", !name.contains("*") else {
            throw bad("'*' is allowed only as the first label (*.example.com): a wildcard that wide would open the whole internet")
        }
        guard name.count <= 253 else { throw bad("a host name has at most 253 characters") }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            guard (1...63).contains(label.count), label.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }),
                label.first != "-", label.last != "-"
            else {
                throw bad("'\(label.prefix(63))' is not a valid DNS label (letters, digits and inner hyphens, 1 to 63 characters)")
            }
        }
        if labels.last?.allSatisfy(\.isNumber) == true { throw bad("not a valid IPv4 address or host name") }
    }
}
