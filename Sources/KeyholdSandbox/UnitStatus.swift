/// The state of a loaded unit, as systemd reports it.
public struct UnitStatus: Sendable, Equatable {
    /// The unit name.
    public var name: String
    /// `ActiveState`: `active`, `activating`, `deactivating`, `inactive`, `failed`...
    public var activeState: String
    /// `SubState`: `running`, `exited`, `dead`, `failed`...
    public var subState: String
    /// `InvocationID` as 32 lowercase hex characters (empty when the unit never ran).
    public var invocationID: String
    /// `MainPID` of a service (0 when none or not a service).
    public var mainPID: Int32
    /// `Result` of a service: `success`, `exit-code`, `signal`, `timeout`... (nil when not a service).
    public var result: String?
    /// `ExecMainStatus` of a service: the exit code or signal of the main process (nil when not a service).
    public var execMainStatus: Int32?

    /// Creates a value.
    public init(
        name: String, activeState: String, subState: String, invocationID: String, mainPID: Int32,
        result: String?, execMainStatus: Int32?
    ) {
        self.name = name
        self.activeState = activeState
        self.subState = subState
        self.invocationID = invocationID
        self.mainPID = mainPID
        self.result = result
        self.execMainStatus = execMainStatus
    }

    /// Whether the unit is `active` (for a `Type=exec` service: its main process runs).
    public var isActive: Bool { activeState == "active" }
}
