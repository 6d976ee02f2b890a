import Foundation
import GRDB
import KeyholdCore
import Synchronization

/// Proxy-token lookups cached for as long as the database is unchanged.
///
/// SQLite's `PRAGMA data_version`, read on a connection of its own, changes whenever any other connection (of this
/// process or another) commits. Checking it costs a few microseconds on the calling thread, against two reads through
/// the pool per request (each a hop to a reader queue, a statement compiled and a token hashed). A revoked token, a
/// suspended tenant or a new platform key is a commit, so a cached answer is exactly as fresh as a read would be.
/// When the version cannot be read, nothing is cached and every request reads the database as before.
final class LookupCache: Sendable {
    private let connection: DatabaseQueue?
    private struct Entries {
        var version = -1
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

    /// The database's data version now (forgetting what was cached under an older one), or nil when unknown.
    func currentVersion() -> Int? {
        guard let connection,
            let version = try? connection.inDatabase({ db in try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) })
        else { return nil }
        entries.withLock { entries in
            if entries.version != version { entries = Entries(version: version) }
        }
        return version
    }

    func caller(_ tokenHash: Data, version: Int) -> ProxyCaller? {
        entries.withLock { $0.version == version ? $0.callers[tokenHash] : nil }
    }

    /// Remembers a caller read from the database after `version` was seen (so it is at least as fresh).
    func remember(_ caller: ProxyCaller, for tokenHash: Data, version: Int) {
        entries.withLock { entries in
            guard entries.version == version else { return }
            if entries.callers.count >= Self.maximumCallers { entries.callers.removeAll() }
            entries.callers[tokenHash] = caller
        }
    }
}
