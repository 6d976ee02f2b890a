import Foundation
import GRDB
import KeyholdCore
import Synchronization

/// Proxy-token lookups cached for as long as what they depend on is unchanged.
///
/// The version is the database's `proxy_generation` counter, bumped by triggers on every change to tokens, tenants
/// and keys: a revoked token, a suspended tenant or a new platform key changes it in the same commit, so a cached
/// answer is exactly as fresh as a read would be. It is read only when SQLite's `PRAGMA data_version` (on a
/// connection of its own) shows that some other connection committed: the proxy's own usage rows, written five
/// times a second, then cost one small read on the calling thread and keep every cached answer.
/// When the version cannot be read, nothing is cached and every request reads the database.
final class LookupCache: Sendable {
    private let connection: DatabaseQueue?
    private struct Entries {
        /// The `data_version` at which `generation` was last read.
        var dataVersion = -1
        var generation = -1
        var callers: [Data: ProxyCaller] = [:]
    }
    private let entries = Mutex(Entries())
    /// A bound on cached callers (one per live sandbox): past it the cache starts again.
    static let maximumCallers = 10_000

    init(databasePath: String) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        connection = try? DatabaseQueue(path: databasePath, configuration: configuration)
    }

    /// The lookups' version now (forgetting what was cached under an older one), or nil when unknown.
    func currentVersion() -> Int? {
        guard let connection else { return nil }
        return try? connection.inDatabase { db -> Int? in
            guard let dataVersion = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) else { return nil }
            if let known = entries.withLock({ $0.dataVersion == dataVersion ? $0.generation : nil }) { return known }
            guard let generation = try Int.fetchOne(db.cachedStatement(sql: "SELECT n FROM proxy_generation")) else { return nil }
            entries.withLock { entries in
                if entries.generation != generation { entries = Entries(generation: generation) }
                entries.dataVersion = dataVersion
            }
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
