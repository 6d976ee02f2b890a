public import KeyholdCore
import NIOCore

/// How the metering proxy is reached and where it sends requests.
public struct ProxyConfiguration: Sendable {
    /// `HOST:PORT` on loopback for agents, or nil.
    public var tcpAddress: String?
    /// A Unix socket for agents (bind-mounted into sandboxes without a network), or nil.
    public var socketPath: String?
    /// Provider API base URLs replacing the public ones (tests point them at a fake provider).
    public var upstreamBaseURLs: [Provider: String]
    /// The largest request body accepted.
    public var maximumBodyBytes: Int
    /// How long an upstream call may stay silent.
    public var upstreamTimeoutSeconds: Int64
    /// How often usage moves from the journal into SQLite.
    public var flushInterval: Duration
    /// How long an agent may take to send a whole request (then 408 and the connection is closed).
    public var requestReadTimeout: Duration
    /// How long a keep-alive connection may stay idle between requests.
    public var idleTimeout: Duration
    /// PEM CA certificates trusted for provider connections besides the system's, or nil.
    public var upstreamCAFile: String?
    /// How often brokered key uses are audited (`key.use`, one record per sandbox and key per batch).
    public var keyUseAuditInterval: Duration
    /// Names resolved before DNS when a brokered key's base URL is checked: the operator's `--egress-hosts`, as the
    /// egress gateway resolves them (lowercased name to addresses).
    public var staticHosts: [String: [String]] = [:]
    /// How alert webhooks, URLs a tenant chose, are reached (checked as the egress gateway checks destinations).
    public var tenantDestinations = TenantDestinationClient()

    public init(
        tcpAddress: String?, socketPath: String?, upstreamBaseURLs: [Provider: String], maximumBodyBytes: Int = 1 << 20,
        upstreamTimeoutSeconds: Int64 = 300, flushInterval: Duration = .milliseconds(200),
        requestReadTimeout: Duration = .seconds(30), idleTimeout: Duration = .seconds(120), upstreamCAFile: String? = nil,
        keyUseAuditInterval: Duration = .seconds(60)
    ) {
        self.keyUseAuditInterval = keyUseAuditInterval
        self.tcpAddress = tcpAddress
        self.socketPath = socketPath
        self.upstreamBaseURLs = upstreamBaseURLs
        self.maximumBodyBytes = maximumBodyBytes
        self.upstreamTimeoutSeconds = upstreamTimeoutSeconds
        self.flushInterval = flushInterval
        self.requestReadTimeout = requestReadTimeout
        self.idleTimeout = idleTimeout
        self.upstreamCAFile = upstreamCAFile
    }
}

extension ProxyConfiguration {
    var requestReadTimeAmount: TimeAmount { TimeAmount(requestReadTimeout) }
    var idleTimeAmount: TimeAmount { TimeAmount(idleTimeout) }
}

/// A proxy configuration that cannot work.
public enum ProxyConfigurationError: Error, CustomStringConvertible {
    case invalidBaseURL(provider: Provider, url: String)
    case tls(reason: String, caFile: String?)

    public var description: String {
        switch self {
        case .invalidBaseURL(let provider, let url):
            "the \(provider) base URL '\(url)' is not an http:// or https:// URL with a host; fix --provider-base-url"
        case .tls(let reason, let caFile?):
            "the proxy cannot set up TLS with the CA certificates in \(caFile) (\(reason)); give a readable PEM file to --provider-ca-file"
        case .tls(let reason, nil):
            "the proxy cannot set up TLS (\(reason)); check the system's CA certificates (Debian: ca-certificates)"
        }
    }
}
