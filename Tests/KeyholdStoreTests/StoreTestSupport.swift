import Foundation
import GRDB
import KeyholdCore
import KeyholdStore
import KeyholdTesting
import Testing

/// The databases the store runs on; every store test runs on each.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgresql
    var testDescription: String { rawValue }
}

/// A fresh store: a real SQLite file in a new temporary directory, or a new database in a real PostgreSQL server.
final class TemporaryStore {
    let kind: StoreKind
    let directory: String
    /// The store's location: the SQLite file, or the PostgreSQL URL.
    let location: String
    let store: Store
    private let postgres: TestPostgres?
    private let databaseName: String

    init(_ kind: StoreKind = .sqlite) throws {
        self.kind = kind
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        switch kind {
        case .sqlite:
            postgres = nil
            databaseName = ""
            location = directory + "/keyhold.db"
        case .postgresql:
            postgres = try SharedTestPostgres.get()
            (databaseName, location) = try SharedTestPostgres.makeDatabase(prefix: "store")
        }
        store = try Store.open(location: location)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Appends `count` audit records.
    func appendRecords(_ count: Int) throws {
        try store.writeNow { tx in
            for index in 0..<count {
                try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "t\(index)"))
            }
        }
    }

    func verify() throws -> AuditVerification { try store.readNow { tx in try tx.verifyAudit() } }

    /// The rows `sql` returns in the PostgreSQL database, as psql prints them: one line per row, `|` between columns.
    func postgresRows(_ sql: String) throws -> [String] {
        guard let postgres else { return [] }
        return try postgres.execute(sql, database: databaseName).split(separator: "\n").map(String.init)
    }

    /// Changes the database behind the store's back, as an attacker with the file or the server would.
    func tamper(_ sql: String) throws {
        switch kind {
        case .sqlite:
            let queue = try DatabaseQueue(path: location)
            try queue.write { db in try db.execute(sql: sql) }
        case .postgresql:
            try postgres?.execute(sql, database: databaseName)
        }
    }

    /// A table's rows as text (what a copy of the database would hold).
    func dump(_ table: String) throws -> String {
        switch kind {
        case .sqlite:
            return String(decoding: FileManager.default.contents(atPath: location) ?? Data(), as: UTF8.self)
        case .postgresql:
            return try postgres?.execute("SELECT * FROM \(table)", database: databaseName) ?? ""
        }
    }

    /// Records that the store's schema is newer than this keyhold's.
    func markSchemaNewer() throws {
        switch kind {
        case .sqlite: try tamper("INSERT INTO grdb_migrations (identifier) VALUES ('v99')")
        case .postgresql: try tamper("INSERT INTO keyhold_migrations (identifier, applied_at) VALUES ('v99', '')")
        }
    }
}
