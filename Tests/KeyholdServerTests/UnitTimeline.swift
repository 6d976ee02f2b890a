import Foundation
import KeyholdSandbox
import KeyholdTesting
import Synchronization

/// systemd's own account of a tenant's units going active and inactive, from its signals: every change, in order.
///
/// A watcher that samples the units every few milliseconds can miss a short gap between an old agent and its
/// replacement, and misses more the slower the machine is. The signals cannot: each state change is one.
final class UnitTimeline: Sendable {
    /// The changes so far, shared with the task that follows the signals.
    private final class Recorded: Sendable {
        let events = Mutex<[UnitEvent]>([])
    }

    private let recorded = Recorded()
    private let follower: Task<Void, Never>

    /// Follows the units of `tenant` from the moment this returns (bounded: 10 s to follow systemd's signals).
    init(tenant: String) throws {
        let stream = BusSystemd(address: try TestSystemd.instance().busAddress).unitEvents(prefixes: ["keyhold-\(tenant)-"])
        let following = DispatchSemaphore(value: 0)
        let recorded = self.recorded
        follower = Task {
            for await event in stream {
                if event == .resynchronise {
                    following.signal()
                } else {
                    recorded.events.withLock { $0.append(event) }
                }
            }
        }
        guard following.wait(timeout: .now() + 10) == .success else {
            follower.cancel()
            throw HarnessError("systemd's unit signals could not be followed within 10 s")
        }
    }

    deinit { follower.cancel() }

    /// How many of the units were active after each change, starting from `active`.
    func activeCounts(from active: Set<String>) -> [Int] {
        var active = active
        return recorded.events.withLock { events in
            events.map { event in
                switch event {
                case .changed(let unit, "active"): active.insert(unit)
                case .changed(let unit, _), .removed(let unit): active.remove(unit)
                case .resynchronise: break
                }
                return active.count
            }
        }
    }

    /// Waits (bounded: 10 s) until systemd has signalled that `unit` left the active state.
    /// - Returns: whether it did.
    func waitUntilInactive(_ unit: String) -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let left = recorded.events.withLock { events in
                events.contains { event in
                    switch event {
                    case .changed(unit, let state): state != "active"
                    case .removed(unit): true
                    default: false
                    }
                }
            }
            if left { return true }
            usleep(10_000)
        }
        return false
    }
}
