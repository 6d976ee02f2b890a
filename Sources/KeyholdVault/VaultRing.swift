import Synchronization

/// The vault in use, replaceable while the daemon serves (a KEK rotation swaps it).
public final class VaultRing: Sendable {
    private let vault: Mutex<Vault>

    public init(_ vault: Vault) { self.vault = Mutex(vault) }

    /// The vault now: the current KEK and the older ones still needed.
    public var current: Vault { vault.withLock { $0 } }

    /// Installs a vault with another KEK set.
    public func replace(with newVault: Vault) { vault.withLock { $0 = newVault } }
}
