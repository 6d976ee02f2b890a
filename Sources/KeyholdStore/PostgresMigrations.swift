import KeyholdCore

extension PostgresBackend {
    /// A lock id of Keyhold's own, so that hosts starting at once migrate one at a time.
    static let migrationLock: Int64 = 0x6b65_7968_6f6c_6401

    /// Checks, without changing anything, that the database holds a schema this keyhold knows.
    func checkSchema() throws {
        try transaction(readOnly: true) { tx in
            let exists: String? = try tx.value("SELECT CAST(to_regclass('keyhold_migrations') AS TEXT)")
            guard exists != nil else {
                throw StoreError("the database \(location) holds no keyhold state: start `keyhold serve --database ...` once to create it")
            }
            let applied: [String] = try tx.rows("SELECT identifier FROM keyhold_migrations").map { $0["identifier"] }
            let known = PostgresSchema.migrations.map(\.identifier)
            if let unknown = applied.first(where: { !known.contains($0) }) {
                throw StoreError("the database \(location) has schema '\(unknown)', newer than this keyhold knows: upgrade keyhold first")
            }
        }
    }

    /// Applies the migrations this database lacks, in one transaction; refuses a schema newer than this keyhold's.
    func migrate() throws {
        try transaction(readOnly: false) { tx in
            try tx.execute("SELECT pg_advisory_xact_lock(?)", Self.migrationLock)
            try tx.execute("CREATE TABLE IF NOT EXISTS keyhold_migrations (identifier TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            let applied: [String] = try tx.rows("SELECT identifier FROM keyhold_migrations").map { $0["identifier"] }
            let known = PostgresSchema.migrations.map(\.identifier)
            if let unknown = applied.first(where: { !known.contains($0) }) {
                throw StoreError(
                    "the database \(location) has schema '\(unknown)', newer than this keyhold knows: upgrade keyhold on every host first")
            }
            for migration in PostgresSchema.migrations where !applied.contains(migration.identifier) {
                for statement in migration.statements { try tx.execute(statement) }
                try tx.execute("INSERT INTO keyhold_migrations (identifier, applied_at) VALUES (?, ?)", migration.identifier, Timestamp.now())
            }
        }
    }
}
