import GRDB
import Synchronization

/// Reads the proxy lookups' generation: a counter bumped in the same commit as every change to tokens, tenants
/// and keys, so a cached token lookup is exactly as fresh as a read while the counter is unchanged.
///
/// Each reader has a read-only connection of its own (one per event loop, so loops never wait on each other) and
/// reads the counter only when SQLite's `PRAGMA data_version` shows that another connection committed; otherwise a
/// check is one pragma on an idle connection. `data_version` values are per connection, so a reader is never
/// shared between connections' values.
///
/// On PostgreSQL every reader shares the store's `PostgresGenerationWatch`, which costs no query per check.
public final class GenerationReader: Sendable {
    private let connection: DatabaseQueue?
    private let seen = Mutex((dataVersion: -1, generation: -1))
    private let watch: PostgresGenerationWatch?

    init(watch: PostgresGenerationWatch) {
        connection = nil
        self.watch = watch
    }

    init(databasePath: String) {
        watch = nil
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        connection = try? DatabaseQueue(path: databasePath, configuration: configuration)
    }

    /// The generation now, or nil when it cannot be read (the caller then caches nothing).
    public func generation() -> Int? {
        if let watch { return watch.generation() }
        guard let connection else { return nil }
        return try? connection.inDatabase { db -> Int? in
            guard let dataVersion = try Int.fetchOne(db.cachedStatement(sql: "PRAGMA data_version")) else { return nil }
            if let known = seen.withLock({ $0.dataVersion == dataVersion ? $0.generation : nil }) { return known }
            guard let generation = try Int.fetchOne(db.cachedStatement(sql: "SELECT n FROM proxy_generation")) else { return nil }
            seen.withLock { $0 = (dataVersion, generation) }
            return generation
        }
    }
}

extension StoreTransaction {
    /// The proxy lookups' generation as this transaction sees it.
    public func lookupGeneration() throws -> Int {
        try value("SELECT n FROM proxy_generation WHERE id = 1") ?? 0
    }
}

extension Store {
    /// A new reader of the proxy lookups' generation, with a connection of its own.
    public func generationReader() -> GenerationReader {
        switch backend {
        case .sqlite: return GenerationReader(databasePath: path)
        case .postgres(let postgres):
            postgres.generationWatch.startOnce(backend: postgres)
            return GenerationReader(watch: postgres.generationWatch)
        }
    }
}
