import Foundation
import KeyholdCore
public import KeyholdStore
public import KeyholdVault
public import Logging
public import ServiceLifecycle

/// Registers the daemon as its host and beats every third of the lease, on the database's clock.
///
/// A beat that finds the host's row no longer this daemon's (forgotten, or taken over by another daemon after a
/// missed lease) ends the daemon with an error: two daemons must never manage one host's sandboxes.
public struct HostHeartbeat: Service {
    let store: Store
    let host: HostOptions
    /// This daemon process, so that a second daemon with the same host id can be told apart.
    let instance: String
    let logger: Logger
    /// The sandboxes, whose lease this renews and which stop their agents when it cannot.
    let sandboxes: SandboxService
    /// The KEKs this daemon holds now (they change with `kek rotate` and `kek retire`), reported with each beat.
    let vaults: VaultRing
    /// Whether a missed lease fences the host (a store other hosts share). On SQLite no other host can take its
    /// tenants, so a slow disk never stops its agents.
    let fences: Bool

    /// - Parameter fences: whether a missed lease stops this host's agents (a shared PostgreSQL store).
    public init(
        store: Store, host: HostOptions, instance: String, logger: Logger, sandboxes: SandboxService, vaults: VaultRing, fences: Bool
    ) {
        self.store = store
        self.host = host
        self.instance = instance
        self.logger = logger
        self.sandboxes = sandboxes
        self.vaults = vaults
        self.fences = fences
    }

    /// Registers the host, or refuses when another live daemon holds its id. A daemon of this machine that crashed
    /// (its process is gone) is taken over at once rather than after the lease.
    public static func register(store: Store, host: HostOptions, instance: String, keks: [String]) throws {
        try store.writeNow { tx in
            try tx.registerHost(
                id: host.id, instance: instance, maxSandboxes: host.maxSandboxes, leaseMilliseconds: host.leaseMilliseconds, keks: keks,
                isGone: Self.isGone(instance:))
        }
    }

    /// This process among every daemon of the fleet: the machine's boot and pid namespace, the pid, a random part.
    public static func makeInstance() -> String { "\(processSpace ?? "unknown")/\(getpid())/\(TokenStore.generate(prefix: "").prefix(12))" }

    /// This boot of this kernel and this pid namespace (containers on one kernel share the boot, not the namespace),
    /// or nil when either cannot be read.
    static var processSpace: String? {
        guard let boot = try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8), !boot.isEmpty,
            let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        else { return nil }
        return boot.trimmingCharacters(in: .whitespacesAndNewlines) + "+" + namespace.filter { $0.isNumber }
    }

    /// Whether a daemon named by `instance` ran in this boot and pid namespace and its process no longer exists.
    /// Anything unknown is never gone.
    static func isGone(instance: String) -> Bool {
        let parts = instance.split(separator: "/")
        guard parts.count == 3, let space = processSpace, String(parts[0]) == space, let pid = pid_t(parts[1]) else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    public func run() async throws {
        // Two loops: a heartbeat may hang on a partitioned database, the fence must not wait for it.
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await beat() }
            if fences { group.addTask { await watch() } }
            try await group.next()
            group.cancelAll()
        }
    }

    private func beat() async throws {
        let interval = host.lease / 3
        var failing = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: interval)
            let sentAt = ContinuousClock.now
            let ours: Bool
            do {
                let keks = vaults.current.kekIDs
                ours = try await store.write { [host, instance] tx in try tx.heartbeat(hostID: host.id, instance: instance, keks: keks) }
            } catch {
                if !failing { logger.warning("the heartbeat of host '\(host.id)' could not be written: \(error)") }
                failing = true
                continue
            }
            failing = false
            if !ours {
                logger.critical("host '\(host.id)' is no longer this daemon's in the database (forgotten, or taken over): stopping")
                throw KeyholdError.conflict("host '\(host.id)' was taken over or forgotten while this daemon ran")
            }
            if sandboxes.lease.renewed(sentAt: sentAt) {
                logger.notice("host '\(host.id)' holds its lease again: resuming (tenants not moved meanwhile restart here)")
            }
        }
    }

    /// Fences the host once half its lease passed without a renewal: its agents stop well before the database
    /// lets another host take its tenants (a full lease after the last heartbeat, on the database's clock).
    private func watch() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: host.lease / 20)
            if let reason = sandboxes.lease.fenceIfStale() { await sandboxes.fence(reason: reason) }
        }
    }
}
