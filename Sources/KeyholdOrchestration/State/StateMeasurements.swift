import Foundation
import Synchronization

/// Measures agents' state directories (a walk of a tree the tenant shapes) apart from the queue that systemd calls
/// and other blocking work share, with at most one walk per tenant at a time: callers asking meanwhile share its
/// answer, and a status read takes a measurement up to `maximumAge` old. A tenant that grows a huge tree, or asks for
/// its status in a loop, then costs one walk at a time of its own, not everyone's threads.
final class StateMeasurements: Sendable {
    /// How old a measurement a status read may show.
    static let maximumAge: Duration = .seconds(30)

    private let queue = DispatchQueue(label: "keyhold.state-walks", attributes: .concurrent)
    private let walksInFlight = TaskFlights<String, UInt64>()
    private let last = Mutex<[String: (bytes: UInt64, at: ContinuousClock.Instant)]>([:])
    private let walkCount = Atomic<Int>(0)

    /// Walks started since the daemon began (for tests).
    var walks: Int { walkCount.load(ordering: .relaxed) }

    /// The state's size now: the walk in flight for this tenant if there is one, else a new walk.
    func measure(_ state: AgentStateDirectory) async -> UInt64 {
        // A walk does not throw: the only failure would be a cancelled task, never made here.
        (try? await walksInFlight.run(state.tenant) { await self.walk(state) }) ?? 0
    }

    /// The state's size as last measured, when that is recent enough; else measured now.
    func recent(_ state: AgentStateDirectory) async -> UInt64 {
        if let known = last.withLock({ $0[state.tenant] }), ContinuousClock.now - known.at < Self.maximumAge { return known.bytes }
        return await measure(state)
    }

    /// Forgets a tenant's measurement (its state was deleted).
    func forget(tenant: String) { _ = last.withLock { $0.removeValue(forKey: tenant) } }

    private func walk(_ state: AgentStateDirectory) async -> UInt64 {
        walkCount.add(1, ordering: .relaxed)
        let bytes = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: state.usedBytes()) }
        }
        last.withLock { $0[state.tenant] = (bytes, .now) }
        return bytes
    }
}
