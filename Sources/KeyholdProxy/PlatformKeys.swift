import Foundation
import GRDB
import KeyholdCore
import KeyholdStore
import KeyholdVault
import Synchronization

/// The platform's own provider keys, kept in the vault under the reserved tenant `platform` and decrypted
/// into memory only here, for the proxy. Never logged, never sent to an agent.
final class PlatformKeys: Sendable {
    /// The tenant that owns the platform's keys.
    static let tenantName = "platform"

    private let store: Store
    private let vaults: VaultRing
    private let cache = Mutex<[Provider: (version: Int, key: SecretBytes)]>([:])

    init(store: Store, vaults: VaultRing) {
        self.store = store
        self.vaults = vaults
    }

    /// The platform key for a provider, decrypted once per key version.
    func key(for provider: Provider) async throws -> SecretBytes? {
        let record = try await store.database.read { db -> KeyVersionRecord? in
            guard let tenant = try? Store.tenant(named: Self.tenantName, in: db) else { return nil }
            return try Store.activeKeys(tenantID: tenant.id, in: db).first { $0.provider == provider.rawValue }
        }
        guard let record else { return nil }
        if let cached = cache.withLock({ $0[provider] }), cached.version == record.version { return cached.key }
        let key = try vaults.current.open(record.sealed, binding: record.binding)
        cache.withLock { $0[provider] = (record.version, key) }
        return key
    }
}
