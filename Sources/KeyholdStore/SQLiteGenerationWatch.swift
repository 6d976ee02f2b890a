import Foundation
import GRDB
import Synchronization

/// The proxy lookups' generation on SQLite, kept in memory so that the proxy's event loops never query the database.
///
/// Every write transaction of this process reads the counter before it commits and publishes it once committed, so
/// a change made through the daemon (a revoked token, a suspended tenant) is seen by the next request after the
/// change returns. A thread of its own also checks `PRAGMA data_version` every `interval` on a read-only connection,
/// for commits by other processes. While the counter cannot be read the generation is unknown (nil): nothing is
/// cached and every lookup reads the database.
final class SQLiteGenerationWatch: Sendable {
    private let current = Atomic<Int>(-1)
    private let started = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    private let path: String
    let interval: Duration

    init(path: String, interval: Duration = .milliseconds(100)) {
        self.path = path
        self.interval = interval
    }

    /// The generation, or nil while unknown.
    func generation() -> Int? {
        let value = current.load(ordering: .acquiring)
        return value < 0 ? nil : value
    }

    /// Moves the generation forward to `generation` (committed by this process), never back.
    func advance(to generation: Int) {
        var known = current.load(ordering: .relaxed)
        while generation > known {
            let (exchanged, original) = current.compareExchange(expected: known, desired: generation, ordering: .acquiringAndReleasing)
            if exchanged { return }
            known = original
        }
    }

    /// Starts the poll for other processes' commits (the first call only).
    func startOnce() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in self.poll() }
        thread.name = "keyhold-generation-watch"
        thread.start()
    }

    func stop() { stopped.store(true, ordering: .relaxed) }

    private func poll() {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(1)
        var seenDataVersion = -1
        var connection: DatabaseQueue?
        while !stopped.load(ordering: .relaxed) {
            do {
                if connection == nil { connection = try DatabaseQueue(path: path, configuration: configuration) }
                try connection?.inDatabase { db in
                    let dataVersion = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) ?? -1
                    guard dataVersion != seenDataVersion else { return }
                    if let generation = try Int.fetchOne(db.cachedStatement(sql: "SELECT n FROM proxy_generation")) { advance(to: generation) }
                    seenDataVersion = dataVersion
                }
            } catch {
                connection = nil
                seenDataVersion = -1
            }
            Thread.sleep(forTimeInterval: interval / .seconds(1))
        }
    }
}
