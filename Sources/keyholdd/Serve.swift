import ArgumentParser
import Foundation
import KeyholdCommandLine
import KeyholdCore
import KeyholdEgress
import KeyholdOrchestration
import KeyholdProxy
import KeyholdServer
import Logging

extension Keyholdd {
    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: DaemonCommand.serve.abstract
        )

        @OptionGroup var global: GlobalOptions
        @OptionGroup var daemon: DaemonFlags

        @Option(name: .long, help: ArgumentHelp("Also serve the admin API on loopback TCP, with bearer admin tokens.", valueName: "host:port"))
        var tcp: String?

        @Option(help: "How the log is written to standard error: text (for people), or json (one object per line, for log shippers).")
        var logFormat = "text"

        func run() async throws {
            guard let format = LogFormat(rawValue: logFormat) else {
                throw KeyholdError.invalidInput("--log-format '\(logFormat.prefix(20))' must be text or json")
            }
            LoggingSystem.bootstrap { label in
                switch format {
                case .text:
                    var handler = StreamLogHandler.standardError(label: label)
                    handler.logLevel = .info
                    return handler
                case .json: return JSONLogHandler(label: label)
                }
            }
            umask(0o077)
            let options = try daemon.options(global: global, tcp: tcp)
            let server = try Daemon(options: options, logger: Logger(label: "keyhold"))
            try await server.run()
        }
    }
}

/// The daemon's flags, shared by `serve` and `demo`.
struct DaemonFlags: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Plan definitions.", valueName: "dir"))
    var plans: String = ProcessInfo.processInfo.environment["KEYHOLD_PLANS"] ?? ResourceLocator.directory("plans")

    @Option(name: .long, help: ArgumentHelp("Sandbox profiles.", valueName: "dir"))
    var profiles: String = ProcessInfo.processInfo.environment["KEYHOLD_PROFILES"] ?? ResourceLocator.directory("sandbox-profiles")

    @Option(
        name: .long,
        help: ArgumentHelp("The systemd to start sandboxes with (default: $KEYHOLD_SYSTEMD_BUS, else the host's).", valueName: "unix:path=..."))
    var systemdBus: String?

    @Option(name: .long, help: ArgumentHelp("Where that systemd's journal lives (for `sandbox logs`).", valueName: "dir"))
    var journalDirectory: String?

    @Flag(name: .long, help: "Run without systemd: sandbox operations answer 'unavailable'.")
    var noSystemd = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The in-sandbox launcher (keyhold-mount beside it); copied under --launcher-staging-root when sandboxes could not run it there.",
            valueName: "path"))
    var execPath: String = ResourceLocator.execPath

    @Option(name: .long, help: ArgumentHelp("Where launchers sandboxes cannot run where they are get copied.", visibility: .hidden))
    var launcherStagingRoot = LauncherPlacement.defaultStagingRoot

    @Option(name: .long, help: ArgumentHelp("Serve the managed plan's metering proxy on loopback.", valueName: "host:port"))
    var proxy: String?

    @Flag(
        name: .long,
        help: "Let --proxy listen on an address that is not loopback (anyone who reaches it may try proxy tokens); sandboxes never need it.")
    var proxyPublic = false

    @Option(name: .long, help: ArgumentHelp("Serve the tenant console (a web page) on loopback.", valueName: "host:port"))
    var console: String?

    @Flag(name: .long, help: "Let --console listen on an address that is not loopback (prefer a TLS reverse proxy in front of a loopback one).")
    var consolePublic = false

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The console's public base URL behind the reverse proxy (default http://HOST:PORT of --console); sign-in links use it, https makes the cookie Secure.",
            valueName: "url"))
    var consoleURL: String?

    @Option(name: .long, help: ArgumentHelp("Also serve the metering proxy on a Unix socket.", valueName: "path"))
    var proxySocket: String?

    @Option(
        name: .long, parsing: .singleValue,
        help: ArgumentHelp("Replace a provider's API base URL, e.g. anthropic=http://127.0.0.1:9000 (repeatable).", valueName: "provider=url")
    )
    var providerBaseURL: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Names the BYOK egress gateway resolves itself, in /etc/hosts format, before DNS (destinations on a private network).",
            valueName: "file"))
    var egressHosts: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A destination on this host's own network (loopback or private) the daemon may call for tenants: their alert webhooks and keys' base URLs (an internal alert relay). Repeatable; [http://]HOST:PORT.",
            valueName: "destination"))
    var internalDestination: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A PEM file of roots trusted beside the system's for hosts that carry brokered secrets (a private service's CA).",
            valueName: "file"))
    var egressTrustRoots: String?

    @Option(name: .long, help: ArgumentHelp("How long an agent may take to send a whole request to the proxy (then 408).", valueName: "seconds"))
    var proxyRequestTimeout = 30

    @Option(
        name: .long,
        help: ArgumentHelp(
            "PEM CA certificates the proxy trusts for providers besides the system's (a self-hosted endpoint, a TLS-inspecting egress proxy).",
            valueName: "path"))
    var providerCAFile: String?

    @Option(name: .long, help: ArgumentHelp("How long a provider may stay silent during a proxied call (then 504).", valueName: "seconds"))
    var proxyUpstreamTimeout = 300

    @Option(name: .long, help: ArgumentHelp("How long a new agent without sd_notify must stay up to be ready, in ms.", valueName: "ms"))
    var readinessWindowMs = 2000

    @Option(
        name: .long,
        help: ArgumentHelp(
            "How often the reconciler reads placements and desired states from the database, in ms (units' changes come as systemd's signals).",
            visibility: .hidden))
    var reconcileIntervalMs = 500

    @Option(
        name: .long, help: ArgumentHelp("How often running agents' state is measured against the plan's state_max, in ms.", visibility: .hidden))
    var stateCheckIntervalMs = 30_000

    @Option(
        name: .long,
        help: ArgumentHelp("How often brokered key uses are written to the audit log (key.use), in ms.", visibility: .hidden))
    var keyUseAuditIntervalMs = 60_000

    @Option(
        name: .long,
        help: ArgumentHelp(
            "This daemon's id in the fleet (default: the id its state directory recorded at the last start, else the hostname).", valueName: "id"))
    var hostID: String?

    @Option(name: .long, help: ArgumentHelp("How many sandboxes this host takes.", valueName: "n"))
    var maxSandboxes = 500

    @Option(name: .long, help: ArgumentHelp("A host whose heartbeat is older than this is down.", valueName: "seconds"))
    var leaseSeconds = 10

    @Option(name: .long, help: ArgumentHelp("Crashes in a row before a sandbox is reported failed.", visibility: .hidden))
    var maxRestarts = 5

    @Option(name: .long, help: ArgumentHelp("The first restart delay after a crash, in milliseconds (doubles per crash).", visibility: .hidden))
    var restartBackoffMs = 500

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Scheduled key checks started per second for each provider, at most (plans set how often: revalidate_every).", valueName: "n"))
    var keyCheckRate = 5.0

    @Option(name: .long, help: ArgumentHelp("How long a provider may take to answer a key check (then: unreachable).", valueName: "seconds"))
    var keyCheckTimeout = 10

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://HOST:PORT/metrics (loopback unless --metrics-public).", valueName: "host:port"))
    var metrics: String?

    @Flag(name: .long, help: "Let --metrics listen on an address beyond this host (put it behind your scrape network's firewall).")
    var metricsPublic = false

    func options(global: GlobalOptions, tcp: String?) throws -> DaemonOptions {
        if let metrics {
            _ = try ListenAddress.parse(
                metrics, option: "--metrics", example: "127.0.0.1:9464", loopbackOnly: !metricsPublic,
                why: "pass --metrics-public to be scraped from another host")
        }
        guard keyCheckRate > 0, keyCheckRate <= 10_000, keyCheckTimeout > 0, keyCheckTimeout <= 300 else {
            throw KeyholdError.invalidInput("--key-check-rate must be above 0 and at most 10000, --key-check-timeout from 1 to 300 seconds")
        }
        if let proxy {
            _ = try ListenAddress.parse(
                proxy, option: "--proxy", example: "127.0.0.1:8787", loopbackOnly: !proxyPublic,
                why: "pass --proxy-public to listen beyond this host (managed sandboxes reach the proxy inside their own namespace)")
        }
        if let console {
            _ = try ListenAddress.parse(
                console, option: "--console", example: "127.0.0.1:8790", loopbackOnly: !consolePublic,
                why: "put it behind a TLS reverse proxy, or pass --console-public")
        } else if consoleURL != nil || consolePublic {
            throw KeyholdError.invalidInput("--console-url and --console-public need --console HOST:PORT")
        }
        guard proxyRequestTimeout > 0, proxyUpstreamTimeout > 0 else {
            throw KeyholdError.invalidInput("--proxy-request-timeout and --proxy-upstream-timeout must be at least 1 second")
        }
        var overrides: [Provider: String] = [:]
        for entry in providerBaseURL {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw KeyholdError.invalidInput("--provider-base-url '\(entry)' must be PROVIDER=URL") }
            overrides[try Provider.named(parts[0])] = parts[1]
        }
        var sandbox = SandboxConfiguration(
            systemdBus: systemdBus ?? ProcessInfo.processInfo.environment["KEYHOLD_SYSTEMD_BUS"], systemdEnabled: !noSystemd,
            journalDirectory: journalDirectory, profilesDirectory: profiles,
            execPath: execPath, maximumRestarts: maxRestarts,
            restartBackoff: .milliseconds(restartBackoffMs),
            reconcileInterval: .milliseconds(reconcileIntervalMs), readinessWindow: .milliseconds(readinessWindowMs)
        )
        sandbox.launcherStagingRoot = launcherStagingRoot
        if let egressHosts { sandbox.egressResolver = try EgressResolver.loading(hostsFile: egressHosts) }
        sandbox.tenantDestinations = TenantDestinationClient(
            internalDestinations: try internalDestination.map { try EgressRule.parse($0, allowPrivate: true, field: "--internal-destination") },
            staticHosts: sandbox.egressResolver.staticEntries)
        if let egressTrustRoots {
            guard FileManager.default.isReadableFile(atPath: egressTrustRoots) else {
                throw KeyholdError.invalidInput("--egress-trust-roots \(egressTrustRoots): no such readable file (PEM certificates)")
            }
            sandbox.egressTrustRoots = egressTrustRoots
        }
        guard stateCheckIntervalMs > 0 else { throw KeyholdError.invalidInput("--state-check-interval-ms must be at least 1") }
        guard keyUseAuditIntervalMs > 0 else { throw KeyholdError.invalidInput("--key-use-audit-interval-ms must be at least 1") }
        sandbox.stateCheckInterval = .milliseconds(stateCheckIntervalMs)
        var options = DaemonOptions(
            stateDirectory: global.stateDir, socketPath: global.socket, tcpAddress: tcp, plansDirectory: plans, sandbox: sandbox,
            providerBaseURLs: overrides, version: CommandMain.version,
            proxy: proxy == nil && proxySocket == nil
                ? nil
                : ProxyConfiguration(
                    tcpAddress: proxy, socketPath: proxySocket, upstreamBaseURLs: overrides, upstreamTimeoutSeconds: Int64(proxyUpstreamTimeout),
                    requestReadTimeout: .seconds(proxyRequestTimeout), upstreamCAFile: providerCAFile,
                    keyUseAuditInterval: .milliseconds(keyUseAuditIntervalMs)
                ),
            database: global.databaseURL,
            host: try HostOptions(
                id: hostID ?? HostOptions.recordedID(stateDirectory: global.stateDir) ?? HostOptions.defaultID, maxSandboxes: maxSandboxes,
                lease: .seconds(leaseSeconds)
            ).validated()
        )
        // The broker checks a key's base URL with the names the egress gateway resolves itself.
        options.proxy?.staticHosts = sandbox.egressResolver.staticEntries
        options.proxy?.tenantDestinations = sandbox.tenantDestinations
        options.metricsAddress = metrics
        options.keyChecks = KeyCheckOptions(callsPerSecondPerProvider: keyCheckRate, timeoutSeconds: Int64(keyCheckTimeout))
        options.console = try console.map { try ConsoleOptions(address: $0, publicURL: consoleURL) }
        return options
    }
}
