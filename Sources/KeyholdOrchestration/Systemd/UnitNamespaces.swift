public import KeyholdCore

/// What orchestration does inside a started unit's namespaces, besides asking systemd: the listeners of its ways out,
/// its bounded `/tmp`, a warm unit's state. ``HostNamespaces`` enters the real namespaces of the unit's main process;
/// tests use stand-ins on loopback.
public protocol UnitNamespaces: Sendable {
    /// Listening sockets on `addresses` inside the network namespace of the unit's main process, once it has one of
    /// its own. The caller owns the sockets.
    func listeners(unit: String, mainPID: Int32, on addresses: [LoopbackAddress], deadline: ContinuousClock.Instant) throws -> [Int32]

    /// Covers each of `directories` with a tmpfs of at most `bytes` inside the mount namespace of the unit's main
    /// process, once that process runs keyhold-exec (its mounts are then complete) and before its agent runs.
    func mountTemporaryFileSystems(
        unit: String, mainPID: Int32, bytes: UInt64, at directories: [String], deadline: ContinuousClock.Instant)
        throws

    /// Mounts `source` at `destination` (as systemd sees them) inside the mount namespace of the unit's main process.
    /// The caller may fall back to systemd's `BindMountUnit` when this throws.
    func attach(unit: String, mainPID: Int32, source: String, destination: String, readOnly: Bool) throws

    /// The user the unit's main process runs as (a `DynamicUser=`'s uid); nil when the process is gone.
    func owner(unit: String, mainPID: Int32) -> UInt32?
}
