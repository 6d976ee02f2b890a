import Foundation
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
    /// Each provider's key, with its version and the database's data version at which it was last read.
    private let cache = Mutex<[Provider: (version: Int, key: SecretBytes, dataVersion: Int?)]>([:])

    init(store: Store, vaults: VaultRing) {
        self.store = store
        self.vaults = vaults
    }

    /// The key for a provider if it was read at `dataVersion` (the `LookupCache` version: keys unchanged since), else nil.
    func cached(for provider: Provider, dataVersion: Int?) -> SecretBytes? {
        guard let dataVersion, let cached = cache.withLock({ $0[provider] }), cached.dataVersion == dataVersion else { return nil }
        return cached.key
    }

    /// The platform key for a provider, decrypted once per key version.
    /// - Parameter dataVersion: the lookups' version now (`LookupCache`); while it is the one the key was read
    ///   at, the database is not read again. Nil: always read.
    func key(for provider: Provider, dataVersion: Int?) async throws -> SecretBytes? {
        if let key = cached(for: provider, dataVersion: dataVersion) { return key }
        let record = try await store.read { tx -> KeyVersionRecord? in
            guard let tenant = try? tx.tenant(named: Self.tenantName) else { return nil }
            return try tx.activeKeys(tenantID: tenant.id).first { $0.provider == provider }
        }
        guard let record else { return nil }
        if let cached = cache.withLock({ $0[provider] }), cached.version == record.version {
            cache.withLock { $0[provider] = (record.version, cached.key, dataVersion) }
            return cached.key
        }
        let key = try vaults.current.open(record.sealed, binding: record.binding)
        cache.withLock { $0[provider] = (record.version, key, dataVersion) }
        return key
    }
}
