import Foundation
import GRDB
import KeyholdCore
import NIOCore
import Synchronization

/// Proxy-token lookups cached for as long as what they depend on is unchanged.
///
/// The version is the database's `proxy_generation` counter, bumped by triggers on every change to tokens, tenants
/// and keys: a revoked token, a suspended tenant or a new platform key changes it in the same commit, so a cached
/// answer is exactly as fresh as a read would be. It is read only when SQLite's `PRAGMA data_version` shows that
/// some other connection committed: the proxy's own usage rows, written five times a second, then cost one small
/// read and keep every cached answer. Each event loop checks on a read-only connection of its own, so loops never
/// wait on each other's check. When the version cannot be read, nothing is cached and every request reads the
/// database.
final class LookupCache: Sendable {
    /// One event loop's connection, and the `data_version` at which it last read the generation (`data_version`
    /// values are per connection: they cannot be compared across connections).
    private final class Reader: Sendable {
        let connection: DatabaseQueue?
        let seen = Mutex((dataVersion: -1, generation: -1))

        init(databasePath: String) {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(10)
            connection = try? DatabaseQueue(path: databasePath, configuration: configuration)
        }
    }
    private struct Entries {
        var generation = -1
        var callers: [Data: ProxyCaller] = [:]
    }
    private let readers: [ObjectIdentifier: Reader]
    /// For calls from a thread that is none of the loops.
    private let fallback: Reader
    private let entries = Mutex(Entries())
    /// A bound on cached callers (one per live sandbox): past it the cache starts again.
    static let maximumCallers = 10_000

    init(databasePath: String, eventLoops: [any EventLoop]) {
        var readers: [ObjectIdentifier: Reader] = [:]
        for loop in eventLoops { readers[ObjectIdentifier(loop)] = Reader(databasePath: databasePath) }
        self.readers = readers
        fallback = Reader(databasePath: databasePath)
    }

    /// The lookups' version now, read on `eventLoop`'s connection (forgetting what was cached under an older
    /// one), or nil when unknown.
    func currentVersion(on eventLoop: any EventLoop) -> Int? {
        let reader = readers[ObjectIdentifier(eventLoop)] ?? fallback
        guard let connection = reader.connection else { return nil }
        return try? connection.inDatabase { db -> Int? in
            guard let dataVersion = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) else { return nil }
            if let known = reader.seen.withLock({ $0.dataVersion == dataVersion ? $0.generation : nil }) { return known }
            guard let generation = try Int.fetchOne(db.cachedStatement(sql: "SELECT n FROM proxy_generation")) else { return nil }
            // The generation only grows; a loop that read an older one just before a commit must not send the
            // entries back to it.
            entries.withLock { entries in
                if generation > entries.generation { entries = Entries(generation: generation) }
            }
            reader.seen.withLock { $0 = (dataVersion, generation) }
            return generation
        }
    }

    func caller(_ tokenHash: Data, version: Int) -> ProxyCaller? {
        entries.withLock { $0.generation == version ? $0.callers[tokenHash] : nil }
    }

    /// Remembers a caller read from the database after `version` was seen (so it is at least as fresh).
    func remember(_ caller: ProxyCaller, for tokenHash: Data, version: Int) {
        entries.withLock { entries in
            guard entries.generation == version else { return }
            if entries.callers.count >= Self.maximumCallers { entries.callers.removeAll() }
            entries.callers[tokenHash] = caller
        }
    }
}
