import Foundation
import KeyholdCore
import KeyholdStore
import Synchronization

/// Proxy-token lookups cached for as long as what they depend on is unchanged.
///
/// The version is the store's lookup generation (`GenerationReader`), bumped in the same commit as every change to
/// tokens, tenants and keys: a revoked token, a suspended tenant or a new platform key changes it, so a cached answer
/// is exactly as fresh as a read would be. Reading the version is an atomic load (`GenerationReader`), so an event
/// loop never waits on the database for it. When the version is unknown, nothing is cached and every request reads
/// the database (off the event loop).
final class LookupCache: Sendable {
    private struct Entries {
        var generation = -1
        var callers: [Data: ProxyCaller] = [:]
    }
    private let reader: GenerationReader
    private let entries = Mutex(Entries())
    /// A bound on cached callers (one per live sandbox): past it the cache starts again.
    static let maximumCallers = 10_000

    init(store: Store) { reader = store.generationReader() }

    /// The lookups' version now (forgetting what was cached under an older one), or nil when unknown.
    func currentVersion() -> Int? {
        guard let generation = reader.generation() else { return nil }
        // The generation only grows; a loop that read an older one just before a commit must not send the entries
        // back to it.
        entries.withLock { entries in
            if generation > entries.generation { entries = Entries(generation: generation) }
        }
        return generation
    }

    func caller(_ tokenHash: Data, version: Int) -> ProxyCaller? {
        entries.withLock { $0.generation == version ? $0.callers[tokenHash] : nil }
    }

    /// Remembers a caller read from the database after `version` was seen (so it is at least as fresh).
    func remember(_ caller: ProxyCaller, for tokenHash: Data, version: Int) {
        entries.withLock { entries in
            guard entries.generation == version else { return }
            if entries.callers.count >= Self.maximumCallers { entries.callers.removeAll() }
            entries.callers[tokenHash] = caller
        }
    }
}
