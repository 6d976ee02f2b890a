import Foundation
public import KeyholdSandbox
import Synchronization

/// A systemd manager in memory, for orchestration tests in process: transient units that "run" without a process,
/// whose launcher reads its stdin pipe as keyhold-exec would (decoding the payload, or failing the unit on an empty
/// pipe), and whose changes are signalled as systemd signals them.
///
/// On command it fails a call (``failNext(_:unit:)``), holds a start job until released (``holdStarts(of:)``), or
/// crashes a unit (``crash(unit:status:)``). Every call is counted (``calls``).
public final class InMemorySystemd: SystemdControl {
    /// A unit as this manager keeps it.
    public struct Unit: Sendable {
        public var name: String
        public var properties: [UnitProperty]
        public var activeState: String
        public var subState: String
        public var invocationID: String
        public var mainPID: Int32
        public var result: String?
        public var execMainStatus: Int32?
        /// What the unit's launcher read from its stdin once the pipe closed: the payload, or nil (not yet, or empty).
        public var payload: ExecPayload?
        /// Mounts made with `BindMountUnit`, as `source -> destination`.
        public var bindMounts: [String] = []

        var status: UnitStatus {
            UnitStatus(
                name: name, activeState: activeState, subState: subState, invocationID: invocationID, mainPID: mainPID, result: result,
                execMainStatus: execMainStatus)
        }
    }

    /// The calls of ``SystemdControl``, to fail on command and to count.
    public enum Call: String, Sendable, CaseIterable {
        case start, stop, kill, bindMount, resetFailed, status, list, systemState
    }

    /// A failure this manager was told to report.
    public struct CommandedFailure: Error, CustomStringConvertible {
        public var call: Call
        public var unit: String
        public var description: String { "in-memory systemd: \(call.rawValue) of \(unit) failed on command" }
    }

    private struct State {
        var units: [String: Unit] = [:]
        var failures: [(call: Call, unit: String?)] = []
        var heldPrefixes: Set<String> = []
        var heldStarts: [String: [CheckedContinuation<Void, Never>]] = [:]
        var listeners: [Int: (prefixes: [String], continuation: AsyncStream<UnitEvent>.Continuation)] = [:]
        var nextListener = 0
        var nextPID: Int32 = 400_000
        var calls: [Call: Int] = [:]
        /// Every unit started, by name, in order.
        var started: [String] = []
        /// Each unit name's invocations that had a launcher, oldest first.
        var launchedInvocations: [String: [String]] = [:]
        /// What each invocation's launcher read once its pipe ended (nil: empty), and who waits for the others.
        var launcherReads: [String: ExecPayload?] = [:]
        var launcherWaiters: [String: [CheckedContinuation<Void, Never>]] = [:]
        /// Every `ActiveState` change, in order, with when it was signalled.
        var history: [StateChange] = []
    }

    /// A unit's `ActiveState` change, as signalled. The instants of two systemds in one process compare: a test can
    /// merge their histories and ask whether, at every moment, some agent of a tenant was active on some host.
    public struct StateChange: Sendable {
        public var unit: String
        public var activeState: String
        public var at: ContinuousClock.Instant
    }

    private let state = Mutex(State())

    public init() {}

    public var location: String { "in-memory" }

    // MARK: Commands

    /// The next `call` (of `unit`, or of any unit) throws ``CommandedFailure``.
    public func failNext(_ call: Call, unit: String? = nil) {
        state.withLock { $0.failures.append((call, unit)) }
    }

    /// Start jobs of units whose names start with `prefix` wait until ``releaseStarts(of:)`` (or their timeout).
    public func holdStarts(of prefix: String) {
        _ = state.withLock { $0.heldPrefixes.insert(prefix) }
    }

    /// Lets held start jobs of `prefix` finish.
    public func releaseStarts(of prefix: String) {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.heldPrefixes.remove(prefix)
            return state.heldStarts.removeValue(forKey: prefix) ?? []
        }
        for job in waiting { job.resume() }
    }

    /// The unit's main process exits with `status` (a crash): `failed`, as systemd reports a `Type=exec` service whose
    /// program exited non-zero.
    public func crash(unit: String, status: Int32 = 1) {
        exit(unit: unit, result: "exit-code", status: status)
    }

    /// The unit as it is now; nil when not loaded.
    public func unit(_ name: String) -> Unit? { state.withLock { $0.units[name] } }

    /// Every loaded unit, by name.
    public var units: [String: Unit] { state.withLock { $0.units } }

    /// Names of the loaded units whose `ActiveState` is `active`, with `prefix`.
    public func activeUnits(prefix: String) -> [String] {
        state.withLock { $0.units.values.filter { $0.name.hasPrefix(prefix) && $0.activeState == "active" }.map(\.name).sorted() }
    }

    /// What the unit's launcher read, once it read its pipe to the end (nil: the pipe closed empty, or no such unit).
    public func payload(of name: String) async -> ExecPayload? {
        guard let invocation = state.withLock({ $0.units[name]?.invocationID }) else { return nil }
        return await launcherRead(invocation: invocation)
    }

    /// What every launcher of units named `name` read, oldest first, once each read its pipe to the end: nil for a
    /// pipe that closed empty. Units stopped and unloaded since count too.
    public func launcherReads(of name: String) async -> [ExecPayload?] {
        var reads: [ExecPayload?] = []
        for invocation in state.withLock({ $0.launchedInvocations[name] ?? [] }) {
            reads.append(await launcherRead(invocation: invocation))
        }
        return reads
    }

    private func launcherRead(invocation: String) async -> ExecPayload? {
        await withCheckedContinuation { waiter in
            let done = state.withLock { state -> Bool in
                if state.launcherReads[invocation] != nil { return true }
                state.launcherWaiters[invocation, default: []].append(waiter)
                return false
            }
            if done { waiter.resume() }
        }
        return state.withLock { $0.launcherReads[invocation] ?? nil }
    }

    /// Every unit started so far, by name, in order (stopped and unloaded ones too).
    public var startedUnits: [String] { state.withLock { $0.started } }

    /// Every `ActiveState` change so far, oldest first.
    public var history: [StateChange] { state.withLock { $0.history } }

    /// How many times each call was made.
    public var calls: [Call: Int] { state.withLock { $0.calls } }

    // MARK: SystemdControl

    public func startTransientUnit(
        name: String, properties: [UnitProperty], timeout: Duration, whenForked: (@Sendable (StartedUnit) throws -> Void)?
    ) async throws -> StartedUnit {
        try take(.start, unit: name)
        let started = try state.withLock { state -> StartedUnit in
            if let existing = state.units[name] {
                throw SystemdError(
                    code: .callFailed, message: "Could not start unit \(name): unit \(name) was already loaded (\(existing.activeState))")
            }
            state.nextPID += 1
            state.started.append(name)
            let started = StartedUnit(name: name, invocationID: Self.newInvocationID(), mainPID: state.nextPID)
            state.units[name] = Unit(
                name: name, properties: properties, activeState: "activating", subState: "start", invocationID: started.invocationID,
                mainPID: started.mainPID)
            return started
        }
        signal(.changed(unit: name, activeState: "activating"))
        readLauncherInput(of: name, properties: properties)
        try whenForked?(started)
        if let prefix = state.withLock({ state in state.heldPrefixes.first { name.hasPrefix($0) } }) {
            let finished = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await withCheckedContinuation { job in self.state.withLock { $0.heldStarts[prefix, default: []].append(job) } }
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return false
                }
                let first = await group.next() ?? false
                if !first { self.releaseStarts(of: prefix) }
                _ = await group.next()
                return first
            }
            if !finished {
                throw SystemdError(code: .timeout, message: "Unit \(name) did not finish starting within \(timeout) (held by the test)")
            }
        }
        let running = state.withLock { state -> Bool in
            guard var unit = state.units[name], unit.invocationID == started.invocationID, unit.activeState == "activating" else { return false }
            unit.activeState = "active"
            unit.subState = "running"
            state.units[name] = unit
            return true
        }
        guard running else {
            throw SystemdError(code: .jobFailed, message: "systemd could not start unit \(name): job result 'failed'")
        }
        signal(.changed(unit: name, activeState: "active"))
        return started
    }

    public func stopUnit(name: String, timeout: Duration) async throws {
        try take(.stop, unit: name)
        let unit = state.withLock { $0.units[name] }
        guard let unit else { return }
        if unit.activeState == "active" || unit.activeState == "activating" {
            signal(.changed(unit: name, activeState: "deactivating"))
        }
        // A stopped transient unit is unloaded; a failed one stays until reset.
        let removed = state.withLock { state -> Bool in
            guard state.units[name]?.activeState != "failed" else { return false }
            state.units[name] = nil
            return true
        }
        if removed {
            signal(.changed(unit: name, activeState: "inactive"))
            signal(.removed(unit: name))
        }
    }

    public func killUnit(name: String, signal number: Int32) async throws {
        try take(.kill, unit: name)
        exit(unit: name, result: "signal", status: number)
    }

    public func bindMountUnit(name: String, source: String, destination: String, readOnly: Bool) async throws {
        try take(.bindMount, unit: name)
        try state.withLock { state in
            guard state.units[name]?.activeState == "active" else {
                throw SystemdError(code: .callFailed, message: "Could not mount \(source) into unit \(name): it does not run")
            }
            state.units[name]?.bindMounts.append("\(source) -> \(destination)")
        }
    }

    public func resetFailedUnit(name: String) async throws {
        try take(.resetFailed, unit: name)
        let removed = state.withLock { state -> Bool in
            guard state.units[name]?.activeState == "failed" else { return false }
            state.units[name] = nil
            return true
        }
        if removed { signal(.removed(unit: name)) }
    }

    public func unitStatus(name: String) async throws -> UnitStatus? {
        try take(.status, unit: name)
        return state.withLock { $0.units[name]?.status }
    }

    public func listUnits(matching pattern: String) async throws -> [String] {
        try take(.list, unit: pattern)
        return state.withLock { state in state.units.keys.filter { fnmatch(pattern, $0, 0) == 0 }.sorted() }
    }

    public func systemState() async throws -> String {
        try take(.systemState, unit: "-")
        return "running"
    }

    public func unitEvents(prefixes: [String]) -> AsyncStream<UnitEvent> {
        let (events, continuation) = AsyncStream.makeStream(of: UnitEvent.self, bufferingPolicy: .bufferingNewest(4096))
        let id = state.withLock { state in
            let id = state.nextListener
            state.nextListener += 1
            state.listeners[id] = (prefixes, continuation)
            return id
        }
        continuation.onTermination = { [weak self] _ in _ = self?.state.withLock { $0.listeners.removeValue(forKey: id) } }
        continuation.yield(.resynchronise)
        return events
    }

    // MARK: Internals

    /// Counts the call and throws the failure commanded for it, if any.
    private func take(_ call: Call, unit: String) throws {
        let fail = state.withLock { state -> Bool in
            state.calls[call, default: 0] += 1
            guard let index = state.failures.firstIndex(where: { $0.call == call && ($0.unit == nil || $0.unit == unit) }) else { return false }
            state.failures.remove(at: index)
            return true
        }
        if fail { throw CommandedFailure(call: call, unit: unit) }
    }

    private func exit(unit name: String, result: String, status: Int32) {
        let exited = state.withLock { state -> Bool in
            guard var unit = state.units[name], unit.activeState == "active" || unit.activeState == "activating" else { return false }
            unit.activeState = "failed"
            unit.subState = "failed"
            unit.result = result
            unit.execMainStatus = status
            unit.mainPID = 0
            state.units[name] = unit
            return true
        }
        if exited { signal(.changed(unit: name, activeState: "failed")) }
    }

    private func signal(_ event: UnitEvent) {
        let unit: String
        switch event {
        case .changed(let name, _), .removed(let name): unit = name
        case .resynchronise: unit = ""
        }
        let listeners = state.withLock { state in
            if case .changed(let name, let activeState) = event {
                state.history.append(StateChange(unit: name, activeState: activeState, at: .now))
            }
            return state.listeners.values.filter { listener in listener.prefixes.contains { unit.hasPrefix($0) } }.map(\.continuation)
        }
        for listener in listeners { listener.yield(event) }
    }

    /// The launcher's side of the unit's stdin pipe: read to its end on a thread of its own, as keyhold-exec does, then
    /// decoded. An empty pipe (its writer gone without a payload) makes the launcher exit 1, as keyhold-exec does.
    private func readLauncherInput(of name: String, properties: [UnitProperty]) {
        let descriptor = properties.lazy.compactMap { property -> Int32? in
            if case .fileDescriptor("StandardInputFileDescriptor", let fd) = property { return fd }
            return nil
        }.first
        guard let descriptor else { return }
        let own = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
        guard own >= 0 else { return }
        guard let invocation = state.withLock({ $0.units[name]?.invocationID }) else {
            close(own)
            return
        }
        state.withLock { $0.launchedInvocations[name, default: []].append(invocation) }
        let thread = Thread { [weak self] in
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(own, $0.baseAddress, $0.count) }
                if count > 0 {
                    bytes += buffer[0..<count]
                } else if count == 0 || errno != EINTR {
                    break
                }
            }
            close(own)
            guard let self else { return }
            let payload = bytes.isEmpty ? nil : try? ExecPayload(decoding: bytes)
            let (current, waiters) = self.state.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
                let current = state.units[name]?.invocationID == invocation
                if current { state.units[name]?.payload = payload }
                state.launcherReads[invocation] = .some(payload)
                return (current, state.launcherWaiters.removeValue(forKey: invocation) ?? [])
            }
            if current && payload == nil { self.exit(unit: name, result: "exit-code", status: 1) }
            for waiter in waiters { waiter.resume() }
        }
        thread.name = "in-memory-launcher"
        thread.start()
    }

    private static func newInvocationID() -> String {
        (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
