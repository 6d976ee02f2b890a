/// Reads the proxy lookups' generation: a counter bumped in the same commit as every change to tokens, tenants
/// and keys, so a cached token lookup is exactly as fresh as a read while the counter is unchanged.
///
/// A read is an atomic load, never a query, so it is safe on an event loop: on SQLite the store's
/// `SQLiteGenerationWatch` publishes the counter as this process commits (and polls for other processes' commits);
/// on PostgreSQL the `PostgresGenerationWatch` LISTENs for every host's commits.
public struct GenerationReader: Sendable {
    fileprivate enum Source: Sendable {
        case sqlite(SQLiteGenerationWatch)
        case postgres(PostgresGenerationWatch)
    }
    fileprivate let source: Source

    /// The generation now, or nil when it is unknown (the caller then caches nothing).
    public func generation() -> Int? {
        switch source {
        case .sqlite(let watch): watch.generation()
        case .postgres(let watch): watch.generation()
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
    /// A reader of the proxy lookups' generation (starting the store's watch at the first call).
    public func generationReader() -> GenerationReader {
        switch backend {
        case .sqlite:
            sqliteGeneration.startOnce()
            return GenerationReader(source: .sqlite(sqliteGeneration))
        case .postgres(let postgres):
            postgres.generationWatch.startOnce(backend: postgres)
            return GenerationReader(source: .postgres(postgres.generationWatch))
        }
    }
}
