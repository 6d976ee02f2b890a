/// What Keyhold asks of a systemd manager: transient units, their states and their signals.
///
/// Orchestration reaches systemd only through this protocol. ``BusSystemd`` speaks it to a real systemd over sd-bus;
/// tests use an in-memory manager that can fail any call, hang a job or crash a unit on command.
public protocol SystemdControl: Sendable {
    /// Where this manager is, for `/v1/health` and error messages (`host`, or a bus address).
    var location: String { get }

    /// Starts transient unit `name` with `properties` (mode `fail`) and waits for its start job.
    /// - Parameter whenForked: called once the unit's main process exists, before waiting for the job (a `Type=notify`
    ///   unit's job ends only at `READY=1`, which its agent may send only after receiving something from the caller).
    ///   It may block briefly; if it throws, that is thrown.
    /// - Returns: the unit's invocation and main process.
    func startTransientUnit(
        name: String, properties: [UnitProperty], timeout: Duration, whenForked: (@Sendable (StartedUnit) throws -> Void)?
    ) async throws -> StartedUnit

    /// Stops unit `name` and waits for the stop job. A unit that is not loaded counts as stopped.
    func stopUnit(name: String, timeout: Duration) async throws

    /// Sends `signal` to every process of unit `name`; a unit not loaded, or without processes, is not an error.
    func killUnit(name: String, signal: Int32) async throws

    /// Mounts `source` at `destination` inside the running unit's mount namespace (paths as systemd sees them).
    func bindMountUnit(name: String, source: String, destination: String, readOnly: Bool) async throws

    /// Makes systemd forget the `failed` state of unit `name`; a unit not loaded is not an error.
    func resetFailedUnit(name: String) async throws

    /// The state of unit `name`, or nil when systemd has not loaded it.
    func unitStatus(name: String) async throws -> UnitStatus?

    /// Names of the loaded units matching a glob `pattern` such as `keyhold-*.service` (any state).
    func listUnits(matching pattern: String) async throws -> [String]

    /// The manager's `SystemState`: `initializing`, `starting`, `running`, `degraded`, `stopping`...
    func systemState() async throws -> String

    /// systemd's signals about units whose names start with one of `prefixes`, from now until the sequence is dropped.
    /// The first event is ``UnitEvent/resynchronise`` once the signals are followed; another one comes whenever some may
    /// have been missed (a broken connection).
    func unitEvents(prefixes: [String]) -> AsyncStream<UnitEvent>
}

/// A change systemd signalled about a unit.
public enum UnitEvent: Sendable, Equatable {
    /// The unit's `ActiveState` changed (`active`, `deactivating`, `inactive`, `failed`...).
    case changed(unit: String, activeState: String)
    /// systemd unloaded the unit.
    case removed(unit: String)
    /// Signals may have been missed (a new connection): states known so far must be read again.
    case resynchronise
}
