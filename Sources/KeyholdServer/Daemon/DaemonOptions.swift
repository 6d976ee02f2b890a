public import KeyholdCore
import KeyholdOrchestration
public import KeyholdProxy

/// Everything `keyhold serve` needs to know.
public struct DaemonOptions: Sendable {
    public var stateDirectory: String
    /// A fleet's PostgreSQL URL, or nil for the SQLite file in the state directory.
    public var database: String?
    /// This daemon's place in the fleet.
    public var host = HostOptions()
    /// The admin API's Unix socket (mode 0660).
    public var socketPath: String
    /// `HOST:PORT` on loopback for the admin API over TCP with bearer tokens, or nil.
    public var tcpAddress: String?
    public var plansDirectory: String
    public var sandbox: SandboxConfiguration
    /// Base URLs replacing the providers' public ones (for validation), e.g. a local fake provider in tests.
    public var providerBaseURLs: [Provider: String]
    public var version: String
    /// The metering proxy's listeners, or nil to run without it.
    public var proxy: ProxyConfiguration?
    /// Scheduled key checks: their budget per provider and their timeout.
    public var keyChecks = KeyCheckOptions()
    /// `HOST:PORT` of the Prometheus metrics endpoint, or nil for none.
    public var metricsAddress: String?
    /// The tenant console's listener, or nil to run without it.
    public var console: ConsoleOptions?

    public init(
        stateDirectory: String, socketPath: String, tcpAddress: String?, plansDirectory: String, sandbox: SandboxConfiguration,
        providerBaseURLs: [Provider: String], version: String, proxy: ProxyConfiguration? = nil, database: String? = nil,
        host: HostOptions = HostOptions()
    ) {
        self.database = database
        self.host = host
        self.proxy = proxy
        self.stateDirectory = stateDirectory
        self.socketPath = socketPath
        self.tcpAddress = tcpAddress
        self.plansDirectory = plansDirectory
        self.sandbox = sandbox
        self.providerBaseURLs = providerBaseURLs
        self.version = version
    }
}
