import Dispatch

/// Runs blocking work (sd-bus calls, which wait on a socket) off Swift's cooperative thread pool.
enum Blocking {
    private static let queue = DispatchQueue(label: "keyhold.blocking", attributes: .concurrent)

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Serialises operations on one tenant's sandboxes (start, stop, restart, reconcile), across tasks.
actor TenantLocks {
    private var busy: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    func withLock<T: Sendable>(_ tenant: String, _ body: @Sendable () async throws -> T) async throws -> T {
        while busy.contains(tenant) {
            await withCheckedContinuation { waiters[tenant, default: []].append($0) }
        }
        busy.insert(tenant)
        defer {
            busy.remove(tenant)
            if var queue = waiters[tenant], !queue.isEmpty {
                queue.removeFirst().resume()
                waiters[tenant] = queue.isEmpty ? nil : queue
            }
        }
        return try await body()
    }
}
