import Foundation
import GRDB

/// Keyhold's state: one SQLite file in WAL mode, every operation one transaction.
///
/// Commits are durable (`synchronous=FULL`): when a write returns, it is on disk, which is what
/// the audit log's fail-closed rule relies on.
public final class Store: Sendable {
    /// The underlying pool; writes are serialised by GRDB.
    let database: any DatabaseWriter
    public let path: String

    private init(database: any DatabaseWriter, path: String) {
        self.database = database
        self.path = path
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
        return Store(database: pool, path: path)
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
            return Store(database: queue, path: path)
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
        do {
            return try await database.read { db in try body(StoreTransaction(db)) }
        } catch let error as DatabaseError {
            throw Self.unavailable(error, writing: false)
        }
    }

    /// Runs `body` in one write transaction, committed and synced when it returns; rolled back if it throws.
    /// - Throws: what `body` throws, or `StoreError` when the database cannot be written (nothing was changed).
    public func write<T: Sendable>(_ body: @escaping @Sendable (StoreTransaction) throws -> T) async throws -> T {
        do {
            return try await database.write { db in try body(StoreTransaction(db)) }
        } catch let error as DatabaseError {
            throw Self.unavailable(error, writing: true)
        }
    }

    /// `read`, on the calling thread: for start-up checks and for threads of their own that may block.
    public func readNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        do {
            return try database.read { db in try body(StoreTransaction(db)) }
        } catch let error as DatabaseError {
            throw Self.unavailable(error, writing: false)
        }
    }

    /// `write`, on the calling thread: for threads of their own that may block (the usage flusher, a start's
    /// rollback on a thread outside the concurrency pool).
    public func writeNow<T>(_ body: (StoreTransaction) throws -> T) throws -> T {
        do {
            return try database.write { db in try body(StoreTransaction(db)) }
        } catch let error as DatabaseError {
            throw Self.unavailable(error, writing: true)
        }
    }

    private static func unavailable(_ error: DatabaseError, writing: Bool) -> StoreError {
        let what = writing ? "written" : "read"
        let cause = error.message ?? "\(error.resultCode)"
        return StoreError(
            "the state database or audit log could not be \(what) (\(cause))\(writing ? ": nothing was changed" : ""); check the disk and the state directory's permissions"
        )
    }

    /// Copies the WAL into the main file and truncates it, so overwritten pages (a revoked key's data key) leave no copy behind.
    public func checkpointWAL() throws {
        try database.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return error.message ?? "\(error.resultCode)" }
        return "\(error)"
    }
}
