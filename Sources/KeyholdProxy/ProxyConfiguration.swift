public import KeyholdCore

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

    public init(
        tcpAddress: String?, socketPath: String?, upstreamBaseURLs: [Provider: String], maximumBodyBytes: Int = 1 << 20,
        upstreamTimeoutSeconds: Int64 = 300, flushInterval: Duration = .milliseconds(200)
    ) {
        self.tcpAddress = tcpAddress
        self.socketPath = socketPath
        self.upstreamBaseURLs = upstreamBaseURLs
        self.maximumBodyBytes = maximumBodyBytes
        self.upstreamTimeoutSeconds = upstreamTimeoutSeconds
        self.flushInterval = flushInterval
    }
}
