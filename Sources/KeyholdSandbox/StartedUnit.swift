/// A transient unit systemd has started.
public struct StartedUnit: Sendable, Equatable {
    /// The unit name, e.g. `keyhold-acme-1.service`.
    public var name: String
    /// The unit's `InvocationID` as 32 lowercase hex characters (empty if systemd reported none).
    public var invocationID: String
    /// The main process id (`MainPID`), 0 when systemd reports none.
    public var mainPID: Int32

    /// Creates a value.
    public init(name: String, invocationID: String, mainPID: Int32) {
        self.name = name
        self.invocationID = invocationID
        self.mainPID = mainPID
    }
}
