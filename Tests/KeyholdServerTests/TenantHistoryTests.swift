import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// History follows a tenant, not its name: a tenant created again under a deleted tenant's name starts with none, by
/// the CLI, the admin API and its own tenant token; the admin still finds the old history by the old id.
@Suite(.offCooperativePool) struct TenantHistoryTests {
    static func records(_ text: String) -> [[String: Any]] {
        ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]]) ?? []
    }

    static func actions(_ records: [[String: Any]]) -> [String] {
        records.compactMap { ($0["event"] as? [String: Any])?["action"] as? String }
    }

    @Test func aTenantCreatedAgainUnderADeletedNameSeesNoneOfItsPredecessorsRecords() async throws {
        let served = try AdminAPITests.serve()
        let keyhold = served.keyhold
        let key = "sk-ant-api03-history-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "byok", "--agent", "/bin/true"]).status == 0)
        let set = try keyhold.cli(["key", "set", "acme", "anthropic", "--no-validate"], input: Array((key + "\n").utf8))
        try #require(set.status == 0, "\(set.stderr)")
        #expect(try keyhold.cli(["tenant", "delete", "acme", "--yes"]).status == 0)
        let deletion = try #require(Self.records(try keyhold.cli(["audit", "list", "--action", "tenant.delete", "--json"]).stdout).last)
        let oldID = try #require(((deletion["event"] as? [String: Any])?["details"] as? [String: String])?["tenant_id"], "\(deletion)")

        // The name is free again: the new tenant's history is its own.
        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "byok", "--agent", "/bin/true"]).status == 0)
        let byName = Self.actions(Self.records(try keyhold.cli(["audit", "list", "--tenant", "acme", "--json"]).stdout))
        #expect(byName == ["tenant.create"], "\(byName)")
        let token = try TenantTokenTests.Callers.tenantToken(served, name: "acme-portal", tenant: "acme")
        let own = try await served.tcp(token: token).send("GET", "/v1/tenants/acme/audit")
        #expect(own.status == 200 && Self.actions(Self.records(own.text)) == ["tenant.create", "token.create"], "\(own.text)")
        #expect(!own.text.contains("key.set"))

        // The admin finds the old tenant's history by its id.
        let byOldID = Self.actions(Self.records(try keyhold.cli(["audit", "list", "--tenant-id", oldID, "--json"]).stdout))
        #expect(byOldID == ["tenant.create", "key.set", "tenant.delete"], "\(byOldID)")
        let admin = served.tcp(token: try served.createToken("ops"))
        let api = try await admin.send("GET", "/v1/audit?tenant_id=\(oldID)")
        #expect(Self.actions(Self.records(api.text)) == byOldID)
        let gone = try keyhold.cli(["audit", "list", "--tenant", "initech"])
        #expect(gone.status != 0 && gone.stderr.contains("--tenant-id"), "\(gone.stderr)")
        #expect(try await admin.send("GET", "/v1/audit?tenant=initech").status == 404)
        #expect(try keyhold.cli(["audit", "verify"]).status == 0)
    }
}
