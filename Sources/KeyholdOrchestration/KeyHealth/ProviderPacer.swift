import Foundation
import Synchronization

/// Spaces calls to each provider so that at most `callsPerSecond` start in any second: each caller is given the
/// next free slot and sleeps until it.
final class ProviderPacer: Sendable {
    let interval: Duration
    private let nextSlot = Mutex<[String: ContinuousClock.Instant]>([:])

    init(callsPerSecond: Double) {
        interval = .nanoseconds(Int64(1e9 / max(callsPerSecond, 0.001)))
    }

    /// Waits for this provider's next slot (at once when it has been idle).
    func acquire(_ provider: String) async throws {
        let now = ContinuousClock.now
        let slot = nextSlot.withLock { slots in
            let slot = max(slots[provider] ?? now, now)
            slots[provider] = slot + interval
            return slot
        }
        if slot > now { try await Task.sleep(until: slot, clock: .continuous) }
    }
}
