import Foundation
import KeyholdCore
import KeyholdEgress
import KeyholdProxy
import KeyholdSandbox
import Logging
import NIOCore
import Synchronization

/// The network boundary of running sandboxes. Every sandbox runs in a network namespace of its own (the profile's
/// `PrivateNetwork=yes`) with loopback only; its ways out are listeners that the daemon makes inside that namespace
/// and serves itself: the metering proxy at `http://127.0.0.1:8787` for managed plans, the egress gateway for BYOK
/// (an `HTTPS_PROXY` at `127.0.0.1:3128`, and each allowed destination's port, to which its `/etc/hosts` resolves
/// the allowed names).
final class SandboxBoundary: Sendable {
    /// Where a managed agent finds the metering proxy inside its sandbox.
    static let proxyPort = 8787
    /// Where a BYOK agent finds its `HTTPS_PROXY` inside its sandbox.
    static let egressProxyPort = 3128

    /// What one sandbox has open: its listeners, and for BYOK the route they serve.
    struct Open: Sendable {
        var channels: [any Channel]
        var route: EgressRoute?
        var network: String
        /// Whether the agent's state is mounted read-only (it was over the plan's limit at start).
        var stateReadOnly: Bool
        /// When its state was last measured.
        var stateCheckedAt: ContinuousClock.Instant
    }

    let gateway: EgressGateway
    let systemdRoot: String
    /// Where the listeners are made: inside each unit's network namespace.
    let namespaces: any UnitNamespaces
    private let proxy = Mutex<MeteringProxy?>(nil)
    private let open = Mutex<[String: Open]>([:])
    private let logger: Logger

    init(gateway: EgressGateway, systemdRoot: String, namespaces: any UnitNamespaces, logger: Logger) {
        self.gateway = gateway
        self.systemdRoot = systemdRoot
        self.namespaces = namespaces
        self.logger = logger
    }

    /// Managed sandboxes' listeners are served by this proxy (none: they have no way out).
    func attach(proxy: MeteringProxy) { self.proxy.withLock { $0 = proxy } }

    /// The proxy managed sandboxes use, if any.
    var attachedProxy: MeteringProxy? { proxy.withLock { $0 } }

    /// A path as systemd (and the sandboxes) see it, from this daemon: `/proc/PID/root/...` for a private systemd.
    func hostPath(_ path: String) -> String { systemdRoot == "/" ? path : systemdRoot + path }

    /// Opens the sandbox's way out, once its main process runs in its namespace and before it has its key.
    /// - Parameters:
    ///   - mainPID: the unit's main process as systemd numbers it.
    ///   - brokeredSandboxID: for a BYOK sandbox whose keys are brokered, its id: the metering proxy then also serves
    ///     `http://127.0.0.1:8787` inside it, for that sandbox's placeholders only.
    ///   - secrets, authority: for a brokered sandbox, its tenant's secrets and the authority its agent trusts: the
    ///     gateway terminates TLS to the hosts the secrets are bound to, and writes them in.
    /// - Throws: `KeyholdError.unavailable` when the namespace cannot be reached (the start is then refused).
    func open(
        unit: String, tenant: String, plan: Plan, policy: EgressPolicy, mainPID: Int32, stateReadOnly: Bool, deadline: ContinuousClock.Instant,
        brokeredSandboxID: Int64? = nil, secrets: SandboxSecretBroker? = nil, authority: SandboxAuthority? = nil
    ) throws {
        let brokeringProxy = proxy.withLock { $0 }
        if brokeredSandboxID != nil && brokeringProxy == nil {
            throw KeyholdError.unavailable(
                "\(unit) is on a plan with brokered keys, which the metering proxy serves, and this daemon runs none: start it with --proxy")
        }
        func listeners(_ addresses: [LoopbackAddress]) throws -> [Int32] {
            try namespaces.listeners(unit: unit, mainPID: mainPID, on: addresses, deadline: deadline)
        }
        var channels: [any Channel] = []
        var route: EgressRoute?
        let network: String
        do {
            switch plan.kind {
            case .managed:
                network = "private; metering proxy at http://127.0.0.1:\(Self.proxyPort)"
                if let proxy = proxy.withLock({ $0 }) {
                    let sockets = try listeners([LoopbackAddress(ip: "127.0.0.1", port: Self.proxyPort)])
                    for socket in sockets { channels.append(try proxy.serve(sandboxListener: socket, unit: unit).wait()) }
                } else {
                    logger.warning("\(unit): no metering proxy runs on this daemon (--proxy): the managed agent has no way out")
                }
            case .byok:
                // The gateway's listeners, the key broker's (brokered delivery), and the sandbox's resolver last.
                let broker = brokeredSandboxID.map { _ in [LoopbackAddress(ip: "127.0.0.1", port: Self.proxyPort)] } ?? []
                let addresses =
                    policy.listenAddresses(proxyPort: Self.egressProxyPort).filter { !broker.contains($0) } + broker
                    + [LoopbackAddress(ip: "127.0.0.1", port: 53, datagram: true)]
                let count = policy.entries.count
                network =
                    "private; egress gateway (HTTPS_PROXY http://127.0.0.1:\(Self.egressProxyPort)) to \(count) destination\(count == 1 ? "" : "s")"
                    + (brokeredSandboxID == nil ? "" : "; key broker at http://127.0.0.1:\(Self.proxyPort)")
                let newRoute = EgressRoute(tenant: tenant, unit: unit, policy: policy, broker: secrets, authority: authority)
                let sockets = try listeners(addresses)
                for (index, socket) in sockets.enumerated() {
                    do {
                        let served =
                            if index == sockets.count - 1 {
                                gateway.serveDNS(datagramSocket: socket, route: newRoute)
                            } else if let brokeredSandboxID, let brokeringProxy, index == sockets.count - 2 {
                                brokeringProxy.serve(
                                    sandboxListener: socket,
                                    brokered: secrets?.brokerListener
                                        ?? BrokeredListener(sandboxID: brokeredSandboxID, destination: "127.0.0.1:\(Self.proxyPort)"),
                                    unit: unit)
                            } else {
                                gateway.serve(listeningSocket: socket, route: newRoute)
                            }
                        channels.append(try served.wait())
                    } catch {
                        for rest in sockets[(index + 1)...] { Foundation.close(rest) }
                        throw error
                    }
                }
                route = newRoute
            }
        } catch {
            for channel in channels { channel.close(promise: nil) }
            throw KeyholdError.unavailable("cannot open the network boundary of \(unit) (\(error)): no key was injected")
        }
        let entry = Open(channels: channels, route: route, network: network, stateReadOnly: stateReadOnly, stateCheckedAt: .now)
        let previous = open.withLock { $0.updateValue(entry, forKey: unit) }
        previous?.channels.forEach { $0.close(promise: nil) }
    }

    /// Closes the sandbox's listeners (its namespace then goes with its last process).
    func close(unit: String) {
        let closed = open.withLock { $0.removeValue(forKey: unit) }
        closed?.channels.forEach { $0.close(promise: nil) }
        try? FileManager.default.removeItem(atPath: hostPath(Self.filesDirectory(unit: unit)))
    }

    /// Closes every boundary whose unit is not in `live`.
    func sweep(keeping live: Set<String>) {
        let units = open.withLock { Array($0.keys) }
        for unit in units where !live.contains(unit) { close(unit: unit) }
    }

    /// Replaces the policy of the tenant's open routes (allow-egress and deny-egress apply to new connections at once).
    func update(tenant: String, policy: EgressPolicy) {
        let routes = open.withLock { $0.values.compactMap(\.route).filter { $0.tenant == tenant } }
        for route in routes { route.policy = policy }
    }

    /// Reads the tenant's secrets again in its open brokered sandboxes (`secret set`/`revoke` hold from the next request).
    func refreshSecrets(tenant: String) async {
        let brokers = open.withLock { $0.values.compactMap { $0.route?.broker as? SandboxSecretBroker }.filter { $0.tenantName == tenant } }
        for broker in brokers {
            do { try await broker.refresh() } catch { logger.warning("\(broker.unit): secrets not refreshed: \(error)") }
        }
    }

    /// Whether `unit` has its way out open on this daemon.
    /// The units whose boundaries are open: the sandboxes this daemon runs.
    var openUnits: [String] { open.withLock { Array($0.keys) } }

    func isOpen(unit: String) -> Bool { open.withLock { $0[unit] != nil } }

    /// Whether the unit's state is due for a measurement (not read-only, last measured `interval` ago or more);
    /// marks it measured now.
    func stateCheckDue(unit: String, interval: Duration) -> Bool {
        open.withLock { entries in
            guard var entry = entries[unit], !entry.stateReadOnly, ContinuousClock.now - entry.stateCheckedAt >= interval else { return false }
            entry.stateCheckedAt = .now
            entries[unit] = entry
            return true
        }
    }

    /// What `sandbox status` shows of a unit's boundary.
    func describe(unit: String) -> (network: String, egress: [String]?, refused: Int?)? {
        guard let entry = open.withLock({ $0[unit] }) else { return nil }
        return (entry.network, entry.route?.policy.descriptions, entry.route?.refused)
    }

    /// A unit's generated `/etc/hosts` and `/etc/resolv.conf` live here, in systemd's view (a tmpfs).
    static func filesDirectory(unit: String) -> String { "/run/keyhold/sandboxes/\(unit)" }

    /// Where Debian's TLS clients find their trusted roots; a sandbox's own bundle is mounted over it.
    static let trustBundlePath = "/etc/ssl/certs/ca-certificates.crt"

    /// The host's bundle of trusted roots, read once.
    private static let systemRoots: String = (try? String(contentsOfFile: trustBundlePath, encoding: .utf8)) ?? ""

    /// Whether this host has a bundle of roots to mount over (the `ca-certificates` package).
    static var hasTrustBundle: Bool { !systemRoots.isEmpty }

    /// Writes the sandbox's `/etc/hosts` (its allowed names resolve to its gateway), its resolver configuration
    /// (127.0.0.1: the gateway answers a BYOK sandbox's lookups; a managed sandbox has no resolver, names do not resolve)
    /// and its bundle of trusted roots (the system's, and a brokered sandbox's own authority).
    /// - Returns: the files' paths as systemd sees them, for `BindReadOnlyPaths=`.
    func writeNameFiles(
        unit: String, policy: EgressPolicy, authority: SandboxAuthority? = nil
    ) throws -> (
        hosts: String, resolvConf: String, trustBundle: String
    ) {
        let directory = Self.filesDirectory(unit: unit)
        try FileManager.default.createDirectory(
            atPath: hostPath(directory), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        var hosts = "# Written by Keyhold: the names this sandbox may reach resolve to its egress gateway.\n127.0.0.1 localhost\n::1 localhost\n"
        for name in policy.hostNames { hosts += "127.0.0.1 \(name)\n" }
        // The gateway answers at 127.0.0.1:53 (BYOK): allowed names, wildcards included, resolve to it; others do not exist.
        let resolv = "# Written by Keyhold: the sandbox's resolver is its egress gateway.\nnameserver 127.0.0.1\noptions attempts:1 timeout:1\n"
        // In place (not replaced): a warm pool's unit has these files mounted already and must see the new text.
        var roots = Self.systemRoots
        if let authority {
            roots += "\n# Keyhold: the authority of this sandbox's brokered secrets (its key stays outside the sandbox).\n" + authority.certificatePEM
        }
        for (name, text) in [("hosts", hosts), ("resolv.conf", resolv), ("ca-certificates.crt", roots)] {
            let path = hostPath(directory + "/" + name)
            let file = Foundation.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o644)
            // Readable by the sandbox's user whatever the daemon's umask.
            let written = file < 0 || fchmod(file, 0o644) != 0 ? -1 : text.utf8CString.withUnsafeBytes { write(file, $0.baseAddress, $0.count - 1) }
            let failure = errno
            if file >= 0 { Foundation.close(file) }
            guard written == text.utf8.count else {
                throw KeyholdError.unavailable(
                    "cannot write \(path) for the sandbox's name resolution (\(String(cString: strerror(failure)))): is /run full?")
            }
        }
        return (directory + "/hosts", directory + "/resolv.conf", directory + "/ca-certificates.crt")
    }
}
