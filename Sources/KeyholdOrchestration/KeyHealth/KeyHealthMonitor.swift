import Foundation
import KeyholdCore
import KeyholdStore
public import Logging
public import ServiceLifecycle
import Synchronization

/// Checks every active key with its provider on its plan's schedule (`revalidate_every:`, jittered by up to a tenth;
/// a key never checked is first checked at a point of its first period of its own, so that keys stored together are
/// not checked together), within a budget of calls per second per provider.
///
/// On a shared store each host checks the keys of the tenants placed on it; the keys of tenants placed nowhere are
/// checked by the live host with the lowest id.
public struct KeyHealthMonitor: Service {
    let plane: ControlPlane
    let pacer: ProviderPacer
    let logger: Logger
    /// How often the due keys are looked up.
    let tick: Duration
    private let inFlight = InFlightKeys()

    public init(plane: ControlPlane, callsPerSecondPerProvider: Double, logger: Logger, tick: Duration = .seconds(1)) {
        self.plane = plane
        self.pacer = ProviderPacer(callsPerSecond: callsPerSecondPerProvider)
        self.logger = logger
        self.tick = tick
    }

    public func run() async throws {
        let periods = plane.plans.plans.filter { $0.kind == .byok }.map(\.keyHealth.revalidateEverySeconds).filter { $0 > 0 }
        guard let shortest = periods.min() else { return }
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                do {
                    for candidate in try await dueKeys(shortestPeriod: shortest) where inFlight.insert(candidate.keyID) {
                        group.addTask {
                            defer { inFlight.remove(candidate.keyID) }
                            await check(candidate)
                        }
                    }
                } catch {
                    logger.warning("key health: \(error)")
                }
                try? await Task.sleep(for: tick)
            }
            group.cancelAll()
        }
    }

    /// The keys whose next check is due now and that this host checks.
    func dueKeys(shortestPeriod: Int) async throws -> [KeyHealthCandidate] {
        let now = Date()
        let earliest = Timestamp.format(now.addingTimeInterval(-Double(shortestPeriod) * 0.9))
        let host = plane.sandboxes.configuration.hostID
        let (candidates, lowestLiveHost) = try await plane.store.read { tx in
            (try tx.keysForRevalidation(checkedBefore: earliest, limit: 5_000), try tx.hosts().filter { !$0.isDown }.map(\.id).min())
        }
        return candidates.filter { candidate in
            guard candidate.host.map({ $0 == host }) ?? (host == nil || host == lowestLiveHost) else { return false }
            guard let plan = try? plane.plans.plan(candidate.plan), plan.keyHealth.revalidateEverySeconds > 0,
                let checked = Timestamp.parse(candidate.checkedOrCreatedAt)
            else { return false }
            let period = Double(plan.keyHealth.revalidateEverySeconds)
            let wait = candidate.neverChecked ? Self.spread(candidate.keyID) * period : period - Self.spread(candidate.keyID) * period / 10
            return checked.addingTimeInterval(wait) <= now
        }
    }

    /// A fraction in [0, 1), the same for a key every time and spread evenly over consecutive ids.
    static func spread(_ keyID: Int64) -> Double {
        var mixed = UInt64(bitPattern: keyID) &* 0x9E37_79B9_7F4A_7C15
        mixed ^= mixed >> 29
        return Double(mixed % 10_000) / 10_000
    }

    private func check(_ candidate: KeyHealthCandidate) async {
        do {
            try await pacer.acquire(candidate.provider.rawValue)
            try await plane.revalidate(candidate)
        } catch is CancellationError {
        } catch {
            logger.warning("key health of \(candidate.tenantName)'s \(candidate.provider) key: \(error)")
        }
    }
}

/// The keys being checked right now, so that a slow provider's key is not queued twice.
final class InFlightKeys: Sendable {
    private let ids = Mutex<Set<Int64>>([])

    /// Adds a key; false when it is already in flight.
    func insert(_ id: Int64) -> Bool { ids.withLock { $0.insert(id).inserted } }
    func remove(_ id: Int64) { _ = ids.withLock { $0.remove(id) } }
}
