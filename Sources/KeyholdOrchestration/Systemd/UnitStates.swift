import KeyholdSandbox
import Synchronization

/// The last `ActiveState` systemd signalled for each of this daemon's units, kept from its ``UnitEvent``s: the
/// reconciler reads a unit's status over the bus only the first time it meets the unit (``seed(unit:activeState:readAt:)``),
/// and a wait for a unit hears of its every change as it happens (``changes(of:)``), without polling.
///
/// All state sits in one `Mutex`.
final class UnitStates: Sendable {
    /// The state seeded for a unit systemd has not loaded.
    static let removedState = "removed"

    private struct State {
        var states: [String: String] = [:]
        /// Whether the signals are followed (a first ``UnitEvent/resynchronise`` arrived).
        var following = false
        /// Raised by every event and forgetting: a read that began at another value may be stale.
        var version = 0
        var nextWaiter = 0
        /// Listeners of ``changes(of:)``: a unit's events, and every resynchronisation.
        var waiters: [Int: (unit: String?, continuation: AsyncStream<UnitEvent>.Continuation)] = [:]
    }

    private let state = Mutex(State())

    /// Takes one signal in.
    func apply(_ event: UnitEvent) {
        let listeners = state.withLock { state -> [AsyncStream<UnitEvent>.Continuation] in
            state.version += 1
            switch event {
            case .changed(let unit, let activeState):
                state.states[unit] = activeState
                return state.waiters.values.filter { $0.unit == nil || $0.unit == unit }.map(\.continuation)
            case .removed(let unit):
                state.states[unit] = nil
                return state.waiters.values.filter { $0.unit == nil || $0.unit == unit }.map(\.continuation)
            case .resynchronise:
                state.states.removeAll()
                state.following = true
                return state.waiters.values.map(\.continuation)
            }
        }
        for listener in listeners { listener.yield(event) }
    }

    /// Whether signals are followed: until then a change may go unheard.
    var isFollowing: Bool { state.withLock { $0.following } }

    /// The unit's `ActiveState` as last signalled or seeded; nil when unknown (never seen, or unloaded since).
    func activeState(of unit: String) -> String? { state.withLock { $0.states[unit] } }

    /// A token to read before reading a unit's status over the bus, and to pass to ``seed(unit:activeState:readAt:)``.
    var token: Int { state.withLock { $0.following ? $0.version : -1 } }

    /// Records a state read over the bus, unless anything happened since the read began (`readAt`, the ``token`` read
    /// before it): a signal, a forgetting or a new subscription. The next pass then reads again.
    func seed(unit: String, activeState: String, readAt token: Int) {
        state.withLock { state in
            if token >= 0, token == state.version, state.states[unit] == nil { state.states[unit] = activeState }
        }
    }

    /// Forgets every state: each unit is read again when next needed.
    func forgetAll() {
        state.withLock { state in
            state.states.removeAll()
            state.version += 1
        }
    }

    /// Forgets a unit's state (it is read again when next needed).
    func forget(unit: String) {
        state.withLock { state in
            state.states[unit] = nil
            state.version += 1
        }
    }

    /// The unit's events from now on, and every ``UnitEvent/resynchronise``, until the caller stops listening.
    func changes(of unit: String) -> AsyncStream<UnitEvent> { listen(to: unit) }

    /// Every unit's events from now on, until the caller stops listening (the newest 4,096 kept when it falls behind).
    func allChanges() -> AsyncStream<UnitEvent> { listen(to: nil) }

    private func listen(to unit: String?) -> AsyncStream<UnitEvent> {
        let (events, continuation) = AsyncStream.makeStream(of: UnitEvent.self, bufferingPolicy: .bufferingNewest(unit == nil ? 4096 : 64))
        let id = state.withLock { state in
            let id = state.nextWaiter
            state.nextWaiter += 1
            state.waiters[id] = (unit, continuation)
            return id
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.waiters.removeValue(forKey: id) }
        }
        return events
    }

    /// Returns once the signals are followed, or after `limit` (systemd unreachable: callers read states over the bus).
    func untilFollowing(atMost limit: Duration) async {
        let events = changes(of: "")  // no unit has this name: only resynchronisations come
        guard !isFollowing else { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events where event == .resynchronise { return }
            }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }
}
