import Foundation
import Synchronization

/// This host's hold on its leases, as the daemon itself can tell without the database: the moment its last
/// successful heartbeat was sent. Past half the lease without one, the host is fenced: it stops its own agents
/// (before any other host may take its tenants, at a full lease on the database's clock) and answers 503.
public final class HostLease: Sendable {
    private struct State {
        var lastRenewal = ContinuousClock.now
        var fencedReason: String?
    }

    private let state = Mutex(State())
    /// The host's lease (`--lease-seconds`).
    let duration: Duration

    init(duration: Duration) { self.duration = duration }

    /// Why the host is fenced, or nil while it holds its leases.
    public var fencedReason: String? { state.withLock { $0.fencedReason } }

    /// Records a heartbeat that succeeded, counted from when it was sent.
    /// - Returns: whether this ended a fence (the host recovers).
    func renewed(sentAt: ContinuousClock.Instant) -> Bool {
        state.withLock { state in
            state.lastRenewal = max(state.lastRenewal, sentAt)
            let wasFenced = state.fencedReason != nil
            state.fencedReason = nil
            return wasFenced
        }
    }

    /// Fences the host if its last renewal is older than half the lease.
    /// - Returns: the reason, when this call fenced it.
    func fenceIfStale(now: ContinuousClock.Instant = .now) -> String? {
        state.withLock { state in
            let age = now - state.lastRenewal
            guard state.fencedReason == nil, age > duration / 2 else { return nil }
            let seconds = Double(age.components.seconds) + Double(age.components.attoseconds) / 1e18
            let reason =
                "this host has not renewed its lease for \(String(format: "%.1f", seconds)) s (the database is unreachable or too slow): its agents were stopped before the lease could pass to another host; it recovers by itself when the database answers"
            state.fencedReason = reason
            return reason
        }
    }
}
