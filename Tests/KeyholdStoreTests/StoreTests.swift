import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdTestTraits
import KeyholdVault
import Testing

@Suite(.offCooperativePool) struct StoreTests {
    @Test(arguments: StoreKind.allCases) func aCiphertextSwappedBetweenTenantsDoesNotDecrypt(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        let vault = Vault(kek: .generate())
        try temporary.store.writeNow { tx in
            for name in ["acme", "globex"] {
                let tenant = try tx.insertTenant(name: try TenantName(name), plan: "byok", agent: ["/bin/true"])
                let binding = KeyBinding(tenantID: tenant.id, provider: "anthropic", version: 1)
                let sealed = try vault.seal(SecretBytes(Array("sk-ant-\(name)".utf8)), binding: binding)
                _ = try tx.insertKeyVersion(tenantID: tenant.id, provider: .anthropic, version: 1, sealed: sealed, baseURL: nil)
            }
        }
        // Copy acme's sealed row over globex's.
        try temporary.tamper(
            """
            UPDATE key_versions SET (ciphertext, nonce, tag, wrapped_dek, fingerprint) =
              (SELECT ciphertext, nonce, tag, wrapped_dek, fingerprint FROM key_versions WHERE tenant_id = 1)
            WHERE tenant_id = 2
            """
        )
        let globex = try temporary.store.readNow { tx in try tx.activeKeys(tenantID: 2).first! }
        #expect { try vault.open(globex.sealed, binding: globex.binding) } throws: { ($0 as? VaultError)?.code == .decryptionFailed }
        let acme = try temporary.store.readNow { tx in try tx.activeKeys(tenantID: 1).first! }
        #expect(try vault.open(acme.sealed, binding: acme.binding).count == 11)
    }

    @Test(arguments: StoreKind.allCases) func revokingDestroysTheDataKeyAndLeavesNoCopyInTheFile(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        let vault = Vault(kek: .generate())
        let record = try temporary.store.writeNow { tx in
            let tenant = try tx.insertTenant(name: try TenantName("acme"), plan: "byok", agent: ["/bin/true"])
            let sealed = try vault.seal(
                SecretBytes(Array("sk-ant-x".utf8)), binding: KeyBinding(tenantID: tenant.id, provider: "anthropic", version: 1))
            return try tx.insertKeyVersion(tenantID: tenant.id, provider: .anthropic, version: 1, sealed: sealed, baseURL: nil)
        }
        try temporary.store.checkpointWAL()
        let wrapped = Data(try #require(record.sealed.wrappedDEK))
        try temporary.store.writeNow { tx in try tx.revokeKeyVersion(record.id) }
        try temporary.store.checkpointWAL()
        if kind == .sqlite {
            for suffix in ["", "-wal"] {
                let bytes = FileManager.default.contents(atPath: temporary.location + suffix) ?? Data()
                #expect(bytes.range(of: wrapped) == nil, "keyhold.db\(suffix) still holds the wrapped data key")
            }
        }
        let revoked = try temporary.store.readNow { tx in try tx.keyVersions(tenantID: record.tenantID).first! }
        #expect(revoked.state == .revoked && revoked.sealed.wrappedDEK == nil)
        #expect(revoked.sealed.ciphertext.allSatisfy { $0 == 0 } && !revoked.sealed.ciphertext.isEmpty, "the ciphertext is overwritten")
        #expect(try !temporary.dump("key_versions").contains(wrapped.map { String(format: "%02x", $0) }.joined()))
        #expect { try vault.open(revoked.sealed, binding: revoked.binding) } throws: { ($0 as? VaultError)?.code == .destroyed }
    }

    @Test(arguments: StoreKind.allCases) func aDatabaseFromANewerKeyholdIsRefused(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        try temporary.markSchemaNewer()
        #expect { try Store.open(location: temporary.location) } throws: { "\($0)".contains("newer than this keyhold knows") }
        #expect { try Store.openReadOnly(location: temporary.location) } throws: { "\($0)".contains("upgrade keyhold") }
    }

    @Test func aFileThatIsNotADatabaseIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kh-not-a-db-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: path, contents: Data("hello, this is not sqlite".utf8))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect { try Store.open(path: path) } throws: { $0 is StoreError }
    }

    @Test(arguments: StoreKind.allCases) func tokensAreStoredHashed(kind: StoreKind) throws {
        let temporary = try TemporaryStore(kind)
        let token = try temporary.store.writeNow { tx in try tx.createAdminToken(name: "ci").token }
        #expect(token.hasPrefix("kh_admin_") && token.count > 40)
        try temporary.store.checkpointWAL()
        let stored = try temporary.dump("admin_tokens")
        #expect(!stored.isEmpty && !stored.contains(token) && !stored.contains(String(token.dropFirst(9))))
        #expect(try temporary.store.readNow { tx in try tx.adminTokenName(for: token) } == "ci")
        try temporary.store.writeNow { tx in try tx.revokeAdminToken(name: "ci") }
        #expect(try temporary.store.readNow { tx in try tx.adminTokenName(for: token) } == nil)
    }
}

@Suite(.offCooperativePool) struct ProxyGenerationTests {
    /// The metering proxy keeps its caches while `proxy_generation` is unchanged: every change to tokens, tenants and
    /// keys must move it, and its own usage rows must not.
    @Test(arguments: StoreKind.allCases) func tokenTenantAndKeyChangesMoveTheGenerationAndUsageRowsDoNot(kind: StoreKind) async throws {
        let temporary = try TemporaryStore(kind)
        let queue = temporary.store
        func generation() throws -> Int { try queue.readNow { tx in try tx.lookupGeneration() } }
        var last = try generation()
        func expectMoved(_ what: Comment) throws {
            let now = try generation()
            #expect(now > last, what)
            last = now
        }

        let (tenant, sandbox) = try queue.writeNow { tx in
            let tenant = try tx.insertTenant(name: try TenantName("globex"), plan: "managed", agent: ["/bin/true"])
            return (tenant, try tx.insertSandbox(tenantID: tenant.id, tenantName: tenant.name))
        }
        try expectMoved("a new tenant")
        _ = try queue.writeNow { tx in try tx.createProxyToken(tenantID: tenant.id, sandboxID: sandbox.id) }
        try expectMoved("a new proxy token")
        let row = UsageRow(
            requestID: "r1", tenantID: tenant.id, sandboxID: sandbox.id, model: "gpt-4o-mini", inputTokens: 1, outputTokens: 1, cachedTokens: 0,
            cacheWriteTokens: 0, reasoningTokens: 0, costPicoUSD: 1, status: 200, charged: .usage, latencyMs: 1, createdAt: Timestamp.now())
        try queue.writeNow { tx in try tx.insertUsage([row]) }
        #expect(try generation() == last, "usage rows leave the proxy's caches alone")
        try queue.writeNow { tx in try tx.revokeProxyTokens(sandboxID: sandbox.id) }
        try expectMoved("a revoked token")
        try queue.writeNow { tx in try tx.updateTenant(tenant.id, state: .suspended) }
        try expectMoved("a suspended tenant")
        let vault = Vault(kek: .generate())
        try queue.writeNow { tx in
            let sealed = try vault.seal(SecretBytes(Array("sk-x".utf8)), binding: KeyBinding(tenantID: tenant.id, provider: "openai", version: 1))
            _ = try tx.insertKeyVersion(tenantID: tenant.id, provider: .openai, version: 1, sealed: sealed, baseURL: nil)
        }
        try expectMoved("a new key")

        // What the proxy checks per request: the same counter, read at once on SQLite, followed through the commits'
        // notifications on PostgreSQL (so it may lag a commit by the notification's trip: waited for, bounded).
        let reader = queue.generationReader()
        // Waits without holding a thread: the notification is handled on the same pool as this test.
        func readerCatchesUp() async -> Bool {
            let deadline = ContinuousClock.now + .seconds(5)
            while reader.generation() != last && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
            return reader.generation() == last
        }
        #expect(await readerCatchesUp())
        try queue.writeNow { tx in try tx.updateTenant(tenant.id, state: .active) }
        try expectMoved("a resumed tenant")
        #expect(await readerCatchesUp(), "the reader follows a later commit")
    }
}
