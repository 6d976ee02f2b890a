import Foundation
import GRDB
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The schema is written for each dialect (SQLite's and PostgreSQL's migrations). Both, fully migrated, must hold the
/// same tables, the same columns, and the same columns that may be NULL: a column added to one and forgotten in the
/// other is caught here, not by the fleet that first reads it.
@Suite(.offCooperativePool) struct SchemaDriftTests {
    /// Each store's own migration bookkeeping.
    static let bookkeeping: Set<String> = ["grdb_migrations", "keyhold_migrations"]

    @Test func bothStoresHoldTheSameTablesColumnsAndNullability() throws {
        let sqlite = try TemporaryStore(.sqlite)
        let postgres = try TemporaryStore(.postgresql)

        var sqliteColumns: Set<String> = []
        let queue = try DatabaseQueue(path: sqlite.location)
        try queue.read { db in
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            for table in tables where !Self.bookkeeping.contains(table) {
                for row in try Row.fetchAll(db, sql: "SELECT name, \"notnull\", pk FROM pragma_table_info(?)", arguments: [table]) {
                    // SQLite lets an INTEGER PRIMARY KEY be NULL on paper; it never is (it is the rowid).
                    let nullable = (row["notnull"] as Int64) == 0 && (row["pk"] as Int64) == 0
                    sqliteColumns.insert("\(table).\(row["name"] as String) \(nullable ? "NULL" : "NOT NULL")")
                }
            }
        }
        let postgresColumns = Set(
            try postgres.postgresRows(
                "SELECT table_name, column_name, is_nullable FROM information_schema.columns WHERE table_schema = 'public'"
            ).compactMap { line -> String? in
                let fields = line.split(separator: "|").map(String.init)
                guard fields.count == 3, !Self.bookkeeping.contains(fields[0]) else { return nil }
                return "\(fields[0]).\(fields[1]) \(fields[2] == "YES" ? "NULL" : "NOT NULL")"
            })

        #expect(sqliteColumns.count > 100, "the schema was read (\(sqliteColumns.count) columns)")
        #expect(sqliteColumns.subtracting(postgresColumns).sorted() == [], "in SQLite's schema only")
        #expect(postgresColumns.subtracting(sqliteColumns).sorted() == [], "in PostgreSQL's schema only")
    }
}
