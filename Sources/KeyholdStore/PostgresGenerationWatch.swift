import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

/// The proxy lookups' generation on PostgreSQL, kept current without a query per request: a dedicated connection
/// LISTENs on `keyhold_proxy_generation` (notified by the schema's triggers at each commit that changes tokens,
/// tenants or keys) and rereads the counter when told. While that connection is down the generation is unknown, so
/// nothing is cached and every lookup reads the database.
final class PostgresGenerationWatch: Sendable {
    private let current = Atomic<Int>(-1)
    private let stopped = Atomic<Bool>(false)
    private let started = Atomic<Bool>(false)
    private let connection = Mutex<PostgresConnection?>(nil)

    /// The generation, or nil while unknown.
    func generation() -> Int? {
        let value = current.load(ordering: .acquiring)
        return value < 0 ? nil : value
    }

    /// Starts watching (the first call only) on connections made by `backend`, reconnecting every second while the
    /// database is away.
    func startOnce(backend: PostgresBackend) {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        Task.detached { [self] in
            while !stopped.load(ordering: .relaxed) {
                do {
                    // On the backend's own threads: connecting waits, and may wait long while the database is away.
                    let listener = try await backend.run { try backend.connect() }
                    connection.withLock { $0 = listener }
                    if stopped.load(ordering: .relaxed) {
                        listener.close().whenComplete { _ in withExtendedLifetime(listener) {} }
                        break
                    }
                    let logger = backend.logger
                    listener.addListener(channel: "keyhold_proxy_generation") { [weak self] _, _ in self?.refresh(on: listener, logger: logger) }
                    _ = try await listener.query("LISTEN keyhold_proxy_generation", logger: logger)
                    self.refresh(on: listener, logger: logger)
                    try await listener.closeFuture.get()
                } catch {
                    backend.logger.debug("the proxy generation watch lost its connection: \(PostgresBackend.describe(error))")
                }
                current.store(-1, ordering: .releasing)
                connection.withLock { $0 = nil }
                if !stopped.load(ordering: .relaxed) { try? await Task.sleep(for: .seconds(1)) }
            }
        }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        if let open = connection.withLock({ $0 }) { open.close().whenComplete { _ in withExtendedLifetime(open) {} } }
    }

    /// Moves the generation forward to `generation` (a commit of this host's), never back; only while the watch
    /// runs (while it is down, the generation stays unknown).
    func advance(to generation: Int) {
        guard started.load(ordering: .relaxed), connection.withLock({ $0 != nil }) else { return }
        raise(to: generation, fromUnknown: false)
    }

    /// Moves the generation up to `generation`, never down (an answer overtaken by a later one must not move it
    /// back); from unknown only when `fromUnknown` (a value read on the watch's own connection).
    private func raise(to generation: Int, fromUnknown: Bool) {
        var seen = current.load(ordering: .acquiring)
        while seen >= 0 || fromUnknown, generation > seen {
            let (exchanged, original) = current.compareExchange(expected: seen, desired: generation, ordering: .acquiringAndReleasing)
            if exchanged { return }
            seen = original
        }
    }

    private func refresh(on listener: PostgresConnection, logger: Logger) {
        listener.query(PostgresQuery(unsafeSQL: "SELECT n FROM proxy_generation WHERE id = 1"), logger: logger).whenComplete { result in
            guard case .success(let answer) = result, let row = answer.rows.first, let n = try? row.decode(Int64.self) else {
                self.current.store(-1, ordering: .releasing)
                return
            }
            self.raise(to: Int(n), fromUnknown: true)
        }
    }
}
