import NIOCore
import Synchronization

/// Runs one lookup per key at a time: requests that need the same answer while it is being read wait for that
/// read instead of starting their own (after each commit, the 64 requests in flight would otherwise all read).
final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let flights = Mutex<[Key: EventLoopFuture<Value>]>([:])

    /// The answer for `key`, completed on `eventLoop`: the one being read, or a new read of `body`.
    func run(_ key: Key, on eventLoop: any EventLoop, _ body: @escaping @Sendable () async throws -> Value) -> EventLoopFuture<Value> {
        let (future, isNew) = flights.withLock { flights -> (EventLoopFuture<Value>, Bool) in
            if let flight = flights[key] { return (flight, false) }
            let promise = eventLoop.makePromise(of: Value.self)
            promise.completeWithTask(body)
            flights[key] = promise.futureResult
            return (promise.futureResult, true)
        }
        guard isNew else { return future.hop(to: eventLoop) }
        future.whenComplete { _ in
            self.flights.withLock { flights in
                if flights[key] === future { flights[key] = nil }
            }
        }
        return future
    }
}
