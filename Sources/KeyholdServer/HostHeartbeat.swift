import Foundation
import KeyholdStore
import Logging
import ServiceLifecycle

/// Registers the daemon as its host and beats every third of the lease, on the database's clock.
///
/// A beat that finds the host's row no longer this daemon's (forgotten, or taken over by another daemon after a
/// missed lease) is logged as an error each time: the operator must restart one of the two.
struct HostHeartbeat: Service {
    let store: Store
    let host: HostOptions
    /// This daemon process, so that a second daemon with the same host id can be told apart.
    let instance: String
    let logger: Logger

    /// Registers the host, or refuses when another live daemon holds its id. A daemon of this machine that crashed
    /// (its process is gone) is taken over at once rather than after the lease.
    static func register(store: Store, host: HostOptions, instance: String) throws {
        try store.writeNow { tx in
            try tx.registerHost(
                id: host.id, instance: instance, maxSandboxes: host.maxSandboxes, leaseMilliseconds: host.leaseMilliseconds,
                isGone: Self.isGone(instance:))
        }
    }

    /// This process among every daemon of the fleet: the machine's boot, the pid, and a random part.
    static func makeInstance() -> String {
        let boot = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return "\(boot ?? "unknown-boot")/\(getpid())/\(TokenStore.generate(prefix: "").prefix(12))"
    }

    /// Whether a daemon named by `instance` ran on this machine since its boot and its process no longer exists.
    static func isGone(instance: String) -> Bool {
        let parts = instance.split(separator: "/")
        guard parts.count == 3, let pid = pid_t(parts[1]), String(parts[0]) == makeInstance().split(separator: "/").first.map(String.init) else {
            return false
        }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    func run() async throws {
        let interval = host.lease / 3
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: interval)
            do {
                let ours = try await store.write { [host, instance] tx in try tx.heartbeat(hostID: host.id, instance: instance) }
                if !ours {
                    logger.error("host '\(host.id)' is no longer this daemon's in the database (forgotten, or taken over): restart it")
                }
            } catch {
                logger.warning("the heartbeat of host '\(host.id)' could not be written: \(error)")
            }
        }
    }
}
