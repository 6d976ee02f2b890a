import Dispatch

/// Runs the usage flusher's file reading, decoding and SQLite writes on a thread of its own, off Swift's
/// cooperative pool (two threads on a two-core machine), so request handling never waits behind them.
enum OffPool {
    private static let queue = DispatchQueue(label: "keyhold.proxy.flusher", qos: .utility)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}
