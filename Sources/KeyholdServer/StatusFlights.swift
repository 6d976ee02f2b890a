import KeyholdCore
import Synchronization

/// One status read per tenant at a time: callers asking for a tenant's sandbox status while it is being read share
/// that read (its store queries and systemd calls) instead of starting their own. A tenant that asks in a loop from
/// many clients then costs one read at a time, and the bus and the store stay free for everyone else's starts.
final class StatusFlights: Sendable {
    private let flights = Mutex<[String: Task<[AdminAPI.Sandbox], any Error>]>([:])

    /// The status being read for `tenant`, or a new read of `body`.
    func status(of tenant: String, _ body: @escaping @Sendable () async throws -> [AdminAPI.Sandbox]) async throws -> [AdminAPI.Sandbox] {
        let task = flights.withLock { flights in
            if let running = flights[tenant] { return running }
            let task = Task { try await body() }
            flights[tenant] = task
            return task
        }
        defer { flights.withLock { flights in if flights[tenant] == task { flights[tenant] = nil } } }
        return try await task.value
    }
}
