import Foundation
import KeyholdCore
import KeyholdTestTraits
import Testing

@testable import KeyholdStore

@Suite(.offCooperativePool) struct AuditLogTests {
    @Test(arguments: StoreKind.allCases) func anIntactChainVerifies(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
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

    @Test(arguments: StoreKind.allCases) func aChangedRecordIsNamed(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        try temporary.appendRecords(5)
        try temporary.tamper("UPDATE audit SET actor = 'mallory' WHERE seq = 3")
        #expect(try temporary.verify().problem?.seq == 3)
        #expect(try temporary.verify().problem?.message.contains("changed") == true)
    }

    @Test(arguments: StoreKind.allCases) func aChangedDetailIsNamed(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        try temporary.store.writeNow { tx in
            try tx.appendAudit(AuditEvent(actor: "root", action: .keySet, details: ["validated": "ok"]))
            try tx.appendAudit(AuditEvent(actor: "root", action: .keySet, details: ["validated": "ok"]))
        }
        try temporary.tamper(#"UPDATE audit SET details = '{"validated":"skipped"}' WHERE seq = 2"#)
        #expect(try temporary.verify().problem?.seq == 2)
    }

    @Test(arguments: StoreKind.allCases) func aDeletedRecordIsNamed(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        try temporary.appendRecords(5)
        try temporary.tamper("DELETE FROM audit WHERE seq = 2")
        let problem = try #require(try temporary.verify().problem)
        #expect(problem.seq == 2)
        #expect(problem.message.contains("missing"))
    }

    @Test(arguments: StoreKind.allCases) func reorderedRecordsAreNamed(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
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

    @Test(arguments: StoreKind.allCases) func aRecordThatCannotBeWrittenRollsTheActionBack(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        switch kind {
        case .sqlite: try temporary.tamper("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        case .postgresql:
            try temporary.tamper(
                """
                CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql;
                CREATE TRIGGER refuse BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse();
                """)
        }
        #expect(throws: StoreError.self) {
            try temporary.store.writeNow { tx in
                _ = try tx.insertTenant(name: try TenantName("acme"), plan: "byok", agent: ["/bin/true"])
                try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "acme"))
            }
        }
        #expect(try temporary.store.readNow { tx in try tx.allTenants() }.isEmpty, "fail-closed: no tenant without its record")
    }

    @Test(arguments: StoreKind.allCases) func aTenantCreatedAgainUnderADeletedNameStartsWithoutItsHistory(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        let (first, second) = try temporary.store.writeNow { tx in
            let first = try tx.insertTenant(name: try TenantName("acme"), plan: "byok", agent: ["/bin/true"])
            try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "acme"))
            try tx.appendAudit(AuditEvent(actor: "root", action: .keyInject, tenant: "acme", provider: "openai", keyVersion: 1))
            // The newest tenant is deleted: SQLite's rowid alone would give its id to the next.
            try tx.deleteTenant(first.id)
            try tx.appendAudit(
                AuditEvent(actor: "root", action: .tenantDelete, tenant: "acme", details: [AuditEvent.tenantIDDetail: String(first.id)]))
            let second = try tx.insertTenant(name: try TenantName("acme"), plan: "byok", agent: ["/bin/true"])
            try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "acme"))
            return (first, second)
        }
        #expect(second.id != first.id, "a deleted tenant's id was given again")
        let (old, new) = try temporary.store.readNow { tx in (try tx.auditRecords(tenantID: first.id), try tx.auditRecords(tenantID: second.id)) }
        #expect(old.map(\.event.action) == ["tenant.create", "key.inject", "tenant.delete"])
        #expect(new.map(\.event.action) == ["tenant.create"], "the new tenant sees its predecessor's records")
        #expect(new.first?.event.tenantID == second.id && old.last?.event.tenantID == first.id)
        #expect(throws: KeyholdError.self) { try temporary.store.readNow { tx in try tx.liveTenantID(named: "gone") } }
        #expect(try temporary.verify().problem == nil, "the ids are part of the hashed records")
    }

    @Test(arguments: StoreKind.allCases) func recordsWrittenBeforeIdsAreBoundToTheLiveTenantFromItsCreation(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        let live = try temporary.store.writeNow { tx in
            try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "acme"))
            try tx.appendAudit(AuditEvent(actor: "root", action: .keyInject, tenant: "acme"))
            try tx.appendAudit(AuditEvent(actor: "root", action: .tenantDelete, tenant: "acme"))
            let live = try tx.insertTenant(name: try TenantName("acme"), plan: "byok", agent: ["/bin/true"])
            try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "acme"))
            try tx.appendAudit(AuditEvent(actor: "root", action: .keyInject, tenant: "acme"))
            return live
        }
        // As a database written before v10 holds them: no ids; then the migration's backfill.
        try temporary.tamper("UPDATE audit SET tenant_id = NULL")
        try temporary.tamper(Schema.auditTenantStatements(bigint: "BIGINT")[1])
        let bound = try temporary.store.readNow { tx in try tx.auditRecords(tenantID: live.id) }
        #expect(bound.map(\.seq) == [4, 5], "only the live tenant's own records are bound to it")
    }

    @Test(arguments: StoreKind.allCases) func filtersSelectRecords(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        let a = try temporary.store.writeNow { tx in
            let a = try tx.insertTenant(name: try TenantName("a"), plan: "byok", agent: ["/bin/true"])
            _ = try tx.insertTenant(name: try TenantName("b"), plan: "byok", agent: ["/bin/true"])
            try tx.appendAudit(AuditEvent(actor: "root", action: .tenantCreate, tenant: "a"))
            try tx.appendAudit(AuditEvent(actor: "root", action: .keySet, tenant: "a", provider: "openai", keyVersion: 1))
            try tx.appendAudit(AuditEvent(actor: "root", action: .keyInject, tenant: "b"))
            return a
        }
        let (byTenant, byFamily, byAction, future) = try temporary.store.readNow { tx in
            (
                try tx.auditRecords(tenantID: a.id), try tx.auditRecords(action: "key"),
                try tx.auditRecords(action: "key.inject"), try tx.auditRecords(since: "2999-01-01T00:00:00.000Z")
            )
        }
        #expect(byTenant.count == 2)
        #expect(byFamily.count == 2)
        #expect(byAction.map(\.event.tenant) == ["b"])
        #expect(future.isEmpty)
    }
}
