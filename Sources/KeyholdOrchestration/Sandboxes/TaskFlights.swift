import Synchronization

/// One piece of work per key at a time: callers asking for a key's answer while it is being worked out share that
/// work instead of starting their own. Used per tenant for sandbox status reads (their store queries and systemd
/// calls) and state walks: a tenant asking in a loop from many clients costs one at a time of its own.
final class TaskFlights<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let flights = Mutex<[Key: Task<Value, any Error>]>([:])

    /// The answer for `key`: the work in flight for it, or a new run of `body`.
    func run(_ key: Key, _ body: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = flights.withLock { flights in
            if let running = flights[key] { return running }
            let task = Task { try await body() }
            flights[key] = task
            return task
        }
        defer { flights.withLock { flights in if flights[key] == task { flights[key] = nil } } }
        return try await task.value
    }
}
