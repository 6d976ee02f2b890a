import Foundation
import KeyholdCore
import KeyholdStore
import Testing

@Suite struct AuditLogTests {
    @Test func anIntactChainVerifies() throws {
        let temporary = try TemporaryStore()
        try temporary.appendRecords(5)
        let result = try temporary.verify()
        #expect(result.problem == nil)
        #expect(result.count == 5)
        let records = try temporary.store.readNow { tx in try tx.auditRecords() }
        #expect(records.map(\.seq) == [1, 2, 3, 4, 5])
        #expect(records[0].prevHash == AuditRecord.genesisHash)
        #expect(records[1].prevHash == records[0].hash)
        #expect(result.headHash == records[4].hash)
    }

    @Test func aChangedRecordIsNamed() throws {
        let temporary = try TemporaryStore()
        try temporary.appendRecords(5)
        try temporary.tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
        #expect(try temporary.verify().problem?.seq == 3)
        #expect(try temporary.verify().problem?.message.contains("changed") == true)
    }

    @Test func aChangedDetailIsNamed() throws {
        let temporary = try TemporaryStore()
        try temporary.store.writeNow { tx in
            try tx.appendAudit(AuditEvent(actor: "root", action: "key.set", details: ["validated": "ok"]))
            try tx.appendAudit(AuditEvent(actor: "root", action: "key.set", details: ["validated": "ok"]))
        }
        try temporary.tamper(#"UPDATE audit SET details = '{"validated":"skipped"}' WHERE seq = 2"#)
        #expect(try temporary.verify().problem?.seq == 2)
    }

    @Test func aDeletedRecordIsNamed() throws {
        let temporary = try TemporaryStore()
        try temporary.appendRecords(5)
        try temporary.tamper("DELETE FROM audit WHERE seq = 2")
        let problem = try #require(try temporary.verify().problem)
        #expect(problem.seq == 2)
        #expect(problem.message.contains("missing"))
    }

    @Test func reorderedRecordsAreNamed() throws {
        let temporary = try TemporaryStore()
        try temporary.appendRecords(5)
        // Swap the contents of records 2 and 4, keeping their sequence numbers.
        try temporary.tamper(
            """
            UPDATE audit SET seq = -2 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = -2;
            """
        )
        let problem = try #require(try temporary.verify().problem)
        #expect(problem.seq == 2)
        #expect(problem.message.contains("reordered"))
    }

    @Test func aRecordThatCannotBeWrittenRollsTheActionBack() throws {
        let temporary = try TemporaryStore()
        try temporary.tamper("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        #expect(throws: StoreError.self) {
            try temporary.store.writeNow { tx in
                _ = try tx.insertTenant(name: try TenantName("acme"), plan: "byok", agent: ["/bin/true"])
                try tx.appendAudit(AuditEvent(actor: "root", action: "tenant.create", tenant: "acme"))
            }
        }
        #expect(try temporary.store.readNow { tx in try tx.allTenants() }.isEmpty, "fail-closed: no tenant without its record")
    }

    @Test func filtersSelectRecords() throws {
        let temporary = try TemporaryStore()
        try temporary.store.writeNow { tx in
            try tx.appendAudit(AuditEvent(actor: "root", action: "tenant.create", tenant: "a"))
            try tx.appendAudit(AuditEvent(actor: "root", action: "key.set", tenant: "a", provider: "openai", keyVersion: 1))
            try tx.appendAudit(AuditEvent(actor: "root", action: "key.inject", tenant: "b"))
        }
        let (byTenant, byFamily, byAction, future) = try temporary.store.readNow { tx in
            (
                try tx.auditRecords(tenant: "a"), try tx.auditRecords(action: "key"),
                try tx.auditRecords(action: "key.inject"), try tx.auditRecords(since: "2999-01-01T00:00:00.000Z")
            )
        }
        #expect(byTenant.count == 2)
        #expect(byFamily.count == 2)
        #expect(byAction.map(\.event.tenant) == ["b"])
        #expect(future.isEmpty)
    }
}
