import Foundation
import GRDB
public import Logging
import PostgresNIO
import Synchronization

/// Keyhold's state: one SQLite file in WAL mode on a single host (the default), or a PostgreSQL database shared by a
/// fleet. Every operation is one transaction, whichever holds it.
///
/// Commits are durable (SQLite's `synchronous=FULL`, PostgreSQL's commit): when a write returns, it is on disk,
/// which is what the audit log's fail-closed rule relies on.
public final class Store: Sendable {
    enum Backend: Sendable {
        /// The pool; writes are serialised by GRDB.
        case sqlite(any DatabaseWriter)
        case postgres(PostgresBackend)
    }
    let backend: Backend
    /// The SQLite file, or the PostgreSQL URL without its password.
    public let path: String
    /// The host whose daemon uses this store (`nameHost`), named in every audit record it appends.
    private let hostName = Mutex<String?>(nil)
    /// The proxy lookups' generation as this process's commits leave it (SQLite; PostgreSQL has its own watch).
    let sqliteGeneration: SQLiteGenerationWatch

    /// Names the host this daemon runs as: from now on every audit record appended through this store says so.
    public func nameHost(_ id: String) { hostName.withLock { $0 = id } }

    private init(backend: Backend, path: String) {
        self.backend = backend
        self.path = path
        sqliteGeneration = SQLiteGenerationWatch(path: path)
    }

    deinit {
        // The watch's task holds the backend; stopping it lets both go.
        if case .postgres(let postgres) = backend { postgres.generationWatch.stop() }
        sqliteGeneration.stop()
    }

    /// A SQLite write transaction's body, and the proxy lookups' generation it leaves (read before the commit).
    private static func writing<T>(_ db: Database, host: String?, _ body: (StoreTransaction) throws -> T) throws -> (T, Int?) {
        (try body(StoreTransaction(db, host: host)), try Int.fetchOne(db.cachedStatement(sql: "SELECT n FROM proxy_generation")))
    }

    /// Publishes a committed write's generation to the proxy's readers, and returns the write's value.
    private func published<T>(_ committed: (value: T, generation: Int?)) -> T {
        if let generation = committed.generation { sqliteGeneration.advance(to: generation) }
        return committed.value
    }

    /// A store location fit to print: a PostgreSQL URL without its password, or the SQLite file's path.
    public static func displayName(of location: String) -> String {
        guard PostgresLocation.isURL(location) else { return location }
        return (try? PostgresLocation(url: location))?.description ?? "postgresql://(unreadable URL)"
    }

    /// Whether `text` is meant as a PostgreSQL URL (any case of the scheme, `postgresql://` or `postgres://`).
    public static func isDatabaseURL(_ text: String) -> Bool { PostgresLocation.isURL(text) }

    /// Opens the store at `location`: a `postgresql://` URL, or the path of an SQLite file (created if needed).
    /// - Throws: `StoreError` with one line saying what is wrong: a bad URL, a refused password, a server that does
    ///   not answer, a schema newer than this keyhold's.
    public static func open(location: String, logger: Logger = Logger(label: "keyhold.store")) throws -> Store {
        guard PostgresLocation.isURL(location) else { return try open(path: location) }
        let postgres = try PostgresBackend(location: try PostgresLocation(url: location), logger: logger)
        do {
            try postgres.migrate()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot use the database \(postgres.location): \(PostgresBackend.describe(error))")
        }
        return Store(backend: .postgres(postgres), path: postgres.location.description)
    }

    /// Opens (creating if needed) and migrates the database at `path`.
    /// - Throws: `StoreError` if the file is not a Keyhold database or comes from a newer Keyhold.
    public static func open(path: String) throws -> Store {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Revoked keys' rows are overwritten with zeros, not just unlinked.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw StoreError("cannot open the database \(path): \(Self.describe(error))")
        }
        let migrator = Schema.migrator
        do {
            try pool.read { db in try Self.refuseNewerSchema(db, migrator: migrator, path: path) }
            try migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot migrate the database \(path): \(Self.describe(error))")
        }
        return Store(backend: .sqlite(pool), path: path)
    }

    /// Opens the store at `location` to read it: an SQLite file read-only, or a PostgreSQL database whose schema is
    /// checked but never migrated.
    public static func openReadOnly(location: String, logger: Logger = Logger(label: "keyhold.store")) throws -> Store {
        guard PostgresLocation.isURL(location) else { return try openReadOnly(path: location) }
        let postgres = try PostgresBackend(location: try PostgresLocation(url: location), logger: logger)
        do {
            try postgres.checkSchema()
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot use the database \(postgres.location): \(PostgresBackend.describe(error))")
        }
        return Store(backend: .postgres(postgres), path: postgres.location.description)
    }

    /// Opens the database read-only (for `audit verify`, which must work while the daemon is down and change nothing).
    public static func openReadOnly(path: String) throws -> Store {
        guard FileManager.default.fileExists(atPath: path) else {
            throw StoreError("no database at \(path): check --state-dir, or run `keyhold init`")
        }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            try queue.read { db in try Self.refuseNewerSchema(db, migrator: Schema.migrator, path: path) }
            return Store(backend: .sqlite(queue), path: path)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError("cannot open the database \(path) read-only: \(Self.describe(error))")
        }
    }

    private static func refuseNewerSchema(_ db: Database, migrator: DatabaseMigrator, path: String) throws {
        guard try db.tableExists("grdb_migrations") else { return }
        let known = Set(migrator.migrations)
        let applied = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw StoreError(
                "the database \(path) has schema '\(unknown)', newer than this keyhold knows: upgrade keyhold, or restore a backup made by this version"
            )
        }
    }

    /// Runs `body` in a read transaction (a consistent snapshot) off the caller's thread.
    /// - Throws: what `body` throws, or `StoreError` when the database cannot be read.
    public func read<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        try await transaction(writing: false, body)
    }

    /// Runs `body` in one write transaction, committed and synced when it returns; rolled back if it throws.
    /// - Throws: what `body` throws, or `StoreError` when the database cannot be written (nothing was changed).
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        try await transaction(writing: true, body)
    }

    /// `read`, on the calling thread: for start-up checks and for threads of their own that may block.
    public func readNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T { try transactionNow(writing: false, body) }

    /// `write`, on the calling thread: for threads of their own that may block (the usage flusher, a start's
    /// rollback on a thread outside the concurrency pool).
    public func writeNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T { try transactionNow(writing: true, body) }

    /// A transaction off the caller's thread: on GRDB's queues, or on the PostgreSQL backend's own threads.
    private func transaction<T: Sendable>(writing: Bool, _ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        let host = hostName.withLock { $0 }
        switch backend {
        case .sqlite(let database):
            do {
                return writing
                    ? published(try await database.write { db in try Self.writing(db, host: host, body) })
                    : try await database.read { db in try body(StoreTransaction(db, host: host)) }
            } catch {
                throw Self.unavailable(error, writing: writing)
            }
        case .postgres(let postgres):
            return try await postgres.run { try self.transactionNow(writing: writing, body) }
        }
    }

    /// A transaction on the calling thread, which may block.
    private func transactionNow<T>(writing: Bool, _ body: (StoreTransaction) throws -> T) throws -> T {
        let host = hostName.withLock { $0 }
        do {
            switch backend {
            case .sqlite(let database):
                return writing
                    ? published(try database.write { db in try Self.writing(db, host: host, body) })
                    : try database.read { db in try body(StoreTransaction(db, host: host)) }
            case .postgres(let postgres): return try postgres.transaction(readOnly: !writing, host: host, body)
            }
        } catch {
            throw Self.unavailable(error, writing: writing)
        }
    }

    /// A database failure as a `StoreError`; any other error (the body's own) passes through unchanged.
    private static func unavailable(_ error: any Error, writing: Bool) -> any Error {
        let cause: String
        switch error {
        case let error as DatabaseError: cause = error.message ?? "\(error.resultCode)"
        case let error as PSQLError: cause = PostgresBackend.describe(error)
        default: return error
        }
        let what = writing ? "written" : "read"
        return StoreError(
            "the state database or audit log could not be \(what) (\(cause))\(writing ? ": nothing was changed" : ""); check the disk and the state directory's permissions"
        )
    }

    /// Copies the WAL into the main file and truncates it, so overwritten pages (a revoked key's data key) leave no copy behind.
    /// On PostgreSQL, vacuums the key table so the old row versions' space is reclaimed.
    public func checkpointWAL() throws {
        guard case .sqlite(let database) = backend else {
            if case .postgres(let postgres) = backend {
                _ = try postgres.withConnection { connection in
                    try PostgresStoreConnection(connection: connection, logger: postgres.logger).execute("VACUUM key_versions", [])
                }
            }
            return
        }
        try database.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}
