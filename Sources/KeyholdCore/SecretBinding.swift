import Foundation

/// Where a tenant's generic secret (a GitHub or Slack token, say) may go and how it is written there: one HTTPS
/// host and port, one request header, a format around the value. Inside a brokered sandbox the agent holds a
/// placeholder in `environment`; the egress gateway terminates TLS for `host` only and writes the secret into
/// `header` of each request to it, replacing whatever the agent sent under that name.
public struct SecretBinding: Codable, Sendable, Equatable {
    /// Canonical host name or IP address (IPv6 without brackets).
    public var host: String
    public var port: Int
    /// The header the secret is written into, as given (HTTP header names compare case-insensitively).
    public var header: String
    /// The header's value with `{}` where the secret goes (`Bearer {}`).
    public var format: String
    /// The environment variable that holds the placeholder inside the sandbox.
    public var environment: String
    /// Whether the host may be a loopback or private address (an explicit choice, as for egress rules).
    public var allowPrivate: Bool

    public init(host: String, port: Int, header: String, format: String, environment: String, allowPrivate: Bool) {
        self.host = host
        self.port = port
        self.header = header
        self.format = format
        self.environment = environment
        self.allowPrivate = allowPrivate
    }

    /// The header's value for `secret`: the format with `{}` replaced.
    public func headerValue(secret: String) -> String {
        guard let range = format.range(of: "{}") else { return secret }
        return format.replacingCharacters(in: range, with: secret)
    }

    /// `host:port` as a destination is shown (IPv6 in brackets).
    public var destination: String { (host.contains(":") ? "[\(host)]" : host) + ":\(port)" }

    /// The `Host` header of a request to it (the port left out when it is HTTPS's own).
    public var hostHeader: String { port == 443 ? (host.contains(":") ? "[\(host)]" : host) : destination }

    /// The label a secret's sealed versions are bound to (with its tenant and version).
    public static func sealingLabel(name: String) -> String { "secret:\(name)" }

    /// A placeholder's label as a message names it: `secret 'github'` or `openai key`.
    public static func describe(label: String) -> String {
        label.hasPrefix("secret:") ? "secret '\(label.dropFirst("secret:".count))'" : "\(label) key"
    }

    public static let defaultHeader = "Authorization"
    public static let defaultFormat = "Bearer {}"

    /// Checks a secret's name and binding as an admin or a tenant gives them.
    /// - Parameters:
    ///   - destination: `HOST[:PORT]` (443 when no port is given).
    ///   - header, format, environment: nil for the defaults (`Authorization`, `Bearer {}`, the name in capitals).
    /// - Throws: `KeyholdError.invalidInput` naming the field, on the first problem found.
    public static func validated(
        name: String, destination: String, header: String?, format: String?, environment: String?, allowPrivate: Bool
    ) throws -> SecretBinding {
        try validate(name: name)
        let (host, port) = try parseDestination(destination)
        let header = header ?? defaultHeader
        guard (1...64).contains(header.utf8.count), header.utf8.allSatisfy(isTokenCharacter) else {
            throw KeyholdError.invalidInput(
                "header '\(header.prefix(64))': not an HTTP header name (letters, digits and !#$%&'*+-.^_`|~ only, 1 to 64 of them)")
        }
        guard !reservedHeaders.contains(header.lowercased()) else {
            throw KeyholdError.invalidInput("header '\(header)': the gateway writes it itself; name the header the service reads the token from")
        }
        let format = format ?? defaultFormat
        guard format.components(separatedBy: "{}").count == 2 else {
            throw KeyholdError.invalidInput("format '\(format.prefix(64))': must contain {} exactly once, where the secret goes")
        }
        guard format.utf8.count <= 256, format.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7f }) else {
            throw KeyholdError.invalidInput("format: printable ASCII only (no line breaks), at most 256 characters")
        }
        let environment = environment ?? name.uppercased().replacingOccurrences(of: "-", with: "_")
        guard let first = environment.utf8.first, first == 0x5f || (first >= 0x41 && first <= 0x5a),
            environment.utf8.count <= 64,
            environment.utf8.allSatisfy({ $0 == 0x5f || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) })
        else {
            throw KeyholdError.invalidInput("env '\(environment.prefix(64))': an environment variable name in capitals (A-Z, 0-9, _), at most 64")
        }
        guard !isReserved(environment: environment) else {
            throw KeyholdError.invalidInput("env '\(environment)': Keyhold sets this variable itself; choose another name")
        }
        let binding = SecretBinding(host: host, port: port, header: header, format: format, environment: environment, allowPrivate: allowPrivate)
        try binding.checkAddress()
        return binding
    }

    /// Refuses a host that is a link-local address, or a loopback or private one without `allowPrivate`.
    /// - Throws: `KeyholdError.invalidInput` naming the host.
    public func checkAddress() throws {
        guard let kind = AddressClass.of(literal: host) else { return }
        guard !kind.isNeverReachable else {
            throw KeyholdError.invalidInput("host '\(host)': a \(kind.rawValue) address is never a destination for a secret")
        }
        guard allowPrivate || !kind.needsPrivateFlag else {
            throw KeyholdError.invalidInput(
                "host '\(host)': a \(kind.rawValue) address, on the host's own network: allowed only with --private (private: true)")
        }
    }

    /// A secret's name: lowercase letters, digits and hyphens, starting with a letter, at most 64.
    public static func validate(name: String) throws {
        guard let first = name.utf8.first, first >= 0x61 && first <= 0x7a, name.utf8.count <= 64,
            name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d })
        else {
            throw KeyholdError.invalidInput(
                "secret name '\(name.prefix(64))': lowercase letters, digits and hyphens, starting with a letter, at most 64")
        }
    }

    private static func parseDestination(_ text: String) throws -> (String, Int) {
        guard !text.contains("/"), !text.contains("*") else {
            throw KeyholdError.invalidInput("host '\(text.prefix(80))': HOST or HOST:PORT, one name (no scheme, path or wildcard)")
        }
        let rule = try EgressRule.parse(text, allowPrivate: true, field: "host")
        return (rule.host, rule.port)
    }

    /// RFC 9110 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5a, 0x61...0x7a: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// Headers that frame the request: a secret there would change where or how it goes, not who it is from.
    static let reservedHeaders: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "expect", "keep-alive",
        "proxy-connection",
    ]

    /// Variables Keyhold itself writes into a sandbox's environment, or that change how programs load.
    static func isReserved(environment name: String) -> Bool {
        let fixed: Set<String> = [
            "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "ALL_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
            "NODE_EXTRA_CA_CERTS", "CURL_CA_BUNDLE", "USER", "LOGNAME", "HOME", "PATH", "STATE_DIRECTORY", "NOTIFY_SOCKET",
        ]
        let providers = Set(Provider.allCases.flatMap { $0.environmentNames })
        return fixed.contains(name) || providers.contains(name) || name.hasPrefix("KEYHOLD_") || name.hasPrefix("LD_")
    }
}
