import Foundation
import KeyholdCore
import KeyholdStore
import NIOCore
import Synchronization

/// Proxy-token lookups cached for as long as what they depend on is unchanged.
///
/// The version is the store's lookup generation (`GenerationReader`), bumped in the same commit as every change to
/// tokens, tenants and keys: a revoked token, a suspended tenant or a new platform key changes it, so a cached answer
/// is exactly as fresh as a read would be. Each event loop checks with a reader of its own, so loops never wait on
/// each other's check. When the version cannot be read, nothing is cached and every request reads the database.
final class LookupCache: Sendable {
    private struct Entries {
        var generation = -1
        var callers: [Data: ProxyCaller] = [:]
    }
    private let readers: [ObjectIdentifier: GenerationReader]
    /// For calls from a thread that is none of the loops.
    private let fallback: GenerationReader
    private let entries = Mutex(Entries())
    /// A bound on cached callers (one per live sandbox): past it the cache starts again.
    static let maximumCallers = 10_000

    init(store: Store, eventLoops: [any EventLoop]) {
        var readers: [ObjectIdentifier: GenerationReader] = [:]
        for loop in eventLoops { readers[ObjectIdentifier(loop)] = store.generationReader() }
        self.readers = readers
        fallback = store.generationReader()
    }

    /// The lookups' version now, read with `eventLoop`'s reader (forgetting what was cached under an older one), or
    /// nil when unknown.
    func currentVersion(on eventLoop: (any EventLoop)?) -> Int? {
        guard let generation = (eventLoop.flatMap { readers[ObjectIdentifier($0)] } ?? fallback).generation() else { return nil }
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
