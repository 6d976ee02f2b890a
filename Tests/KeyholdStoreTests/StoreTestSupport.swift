import Foundation
import GRDB
import KeyholdCore
import KeyholdStore

/// A real SQLite file in a fresh temporary directory.
final class TemporaryStore {
    let directory: String
    let store: Store

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kh-store-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        store = try Store.open(path: directory + "/keyhold.db")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Appends `count` audit records.
    func appendRecords(_ count: Int) throws {
        try store.writeNow { tx in
            for index in 0..<count {
                try tx.appendAudit(AuditEvent(actor: "root", action: "tenant.create", tenant: "t\(index)"))
            }
        }
    }

    func verify() throws -> AuditVerification { try store.readNow { tx in try tx.verifyAudit() } }

    /// Changes the file behind the store's back, as an attacker with the file would.
    func tamper(_ sql: String) throws {
        let queue = try DatabaseQueue(path: directory + "/keyhold.db")
        try queue.write { db in try db.execute(sql: sql) }
    }
}
