import CSystemd
import Foundation
import Glibc
import KeyholdCore
import Synchronization

/// A connection to a systemd manager over D-Bus (sd-bus), for starting and watching transient units.
///
/// All methods block; call them off the async executors (for example from a dedicated thread or
/// `DispatchQueue`). Each call has a connection of its own for its duration, taken from a small pool (at most
/// `maximumConnections`, opened as needed and kept): concurrent starts wait for their own jobs side by side, and no
/// call waits behind another's job. A dropped connection is reopened once and the call retried (a retried
/// `startTransientUnit` may then report that the unit already exists).
public final class SystemdManager: @unchecked Sendable {
    /// The address actually used (after resolving nil and private sockets in another pid namespace).
    public let address: String
    /// Whether the connection goes through a broker (dbus-daemon, with `Hello`) rather than directly to systemd.
    public let isBusClient: Bool
    /// The timeout of single calls that do not take one (`GetUnit`, `Get`, `ListUnitsByPatterns`...).
    public let callTimeout: Duration

    /// The most connections open at once; a call beyond them waits for one to be returned.
    public let maximumConnections: Int
    /// One permit per connection a call may hold: a call waits here, blocking its thread, while all are in use.
    private let permits: DispatchSemaphore
    /// Open connections not in use. There are never more connections than permits: a call opens one only when none
    /// is idle, and it holds a permit meanwhile.
    private let idle = Mutex<[BusConnection]>([])

    /// Prepares a manager for `address` (an sd-bus address such as `unix:path=/run/systemd/private`); nil
    /// means the host's systemd: its private socket when running as root, else the system bus.
    ///
    /// An address `unix:path=/proc/<pid>/root/run/systemd/private` whose `<pid>` lives in another pid namespace
    /// (a private systemd) is replaced by that namespace's dbus-daemon socket
    /// `unix:path=/proc/<pid>/root/run/dbus/system_bus_socket`: systemd refuses private-socket clients whose
    /// pid it cannot see. No connection is made until the first call.
    public init(address: String? = nil, callTimeout: Duration = .seconds(25), maximumConnections: Int = 16) {
        let target = SystemdManager.resolve(address)
        self.address = target.address
        self.isBusClient = target.busClient
        self.callTimeout = callTimeout
        self.maximumConnections = max(1, maximumConnections)
        self.permits = DispatchSemaphore(value: self.maximumConnections)
    }

    // MARK: Units

    /// Starts transient unit `name` with `properties` (mode `fail`) and waits for its start job.
    /// Returns once the job is `done` (for `Type=exec`, once the main program was executed); throws
    /// `jobFailed` naming the unit and systemd's result otherwise, or `timeout`.
    /// - Parameter whenForked: called once the unit's main process exists, before waiting for the job (a `Type=notify`
    ///   unit's job ends only when the process reports READY=1, which it may do only after receiving something from the
    ///   caller). It runs on the start's connection; it may call this manager (another connection answers). If it
    ///   throws, that is thrown.
    public func startTransientUnit(
        name: String, properties: [UnitProperty], timeout: Duration, whenForked: (@Sendable (StartedUnit) throws -> Void)? = nil
    ) throws -> StartedUnit {
        let deadline = ContinuousClock.now + timeout
        return try withBus(
            "start unit \(name)",
            hint: "Check each property's name and D-Bus signature against systemd-run's encoder "
                + "(systemd src/shared/bus-unit-util.c); if the unit already exists, stop it and reset it first."
        ) { bus in
            try bus.subscribeToJobs()
            bus.forgetJobResults()
            let call = try bus.methodCall(member: "StartTransientUnit") { message in
                try message.append(string: name)
                try message.append(string: "fail")
                try message.open("a", "(sv)")
                for property in properties { try property.append(to: message) }
                try message.close()
                try message.open("a", "(sa(sv))")  // no auxiliary units
                try message.close()
            }
            let job = try bus.call(call, timeout: timeout).readObjectPath()
            if let whenForked {
                // Poll (bounded by the deadline) until the main process exists or the job ended early.
                while ContinuousClock.now < deadline {
                    if try bus.waitForJob(job, until: ContinuousClock.now + .milliseconds(1)) != nil { break }
                    if let status = try self.status(on: bus, name: name), status.mainPID > 0 {
                        try whenForked(StartedUnit(name: name, invocationID: status.invocationID, mainPID: status.mainPID))
                        break
                    }
                }
            }
            guard let result = try bus.waitForJob(job, until: deadline) else {
                throw SystemdError(
                    code: .timeout,
                    message: "Unit \(name) did not finish starting within \(timeout); systemd is still running "
                        + "its start job \(job). Stop the unit (`stopUnit`) and check its log.")
            }
            let status = try? self.status(on: bus, name: name)
            guard result == "done" else {
                var detail = "systemd could not start unit \(name): job result '\(result)'"
                if let status {
                    detail += " (ActiveState=\(status.activeState)"
                    if let unitResult = status.result { detail += ", Result=\(unitResult)" }
                    if let code = status.execMainStatus { detail += ", ExecMainStatus=\(code)" }
                    detail += ")"
                    if status.execMainStatus == 203 {
                        // systemd's EXIT_EXEC: the program could not be executed at all.
                        detail +=
                            "; status 203 means systemd could not execute the unit's program: check that keyhold-exec exists and is "
                            + "visible in systemd's mount namespace (a private systemd has its own /tmp)"
                    }
                }
                detail +=
                    ". Read the unit's log (`journalctl -u \(name)`) to see why; reset the unit "
                    + "(`resetFailedUnit`) before reusing its name."
                throw SystemdError(code: .jobFailed, message: detail)
            }
            return StartedUnit(name: name, invocationID: status?.invocationID ?? "", mainPID: status?.mainPID ?? 0)
        }
    }

    /// Stops unit `name` and waits for the stop job. A unit that is not loaded counts as stopped.
    public func stopUnit(name: String, timeout: Duration) throws {
        let deadline = ContinuousClock.now + timeout
        try withBus("stop unit \(name)", hint: "Check that the unit name is right.") { bus in
            try bus.subscribeToJobs()
            bus.forgetJobResults()
            let call = try bus.methodCall(member: "StopUnit") { message in
                try message.append(string: name)
                try message.append(string: "replace")
            }
            let job: String
            do {
                job = try bus.call(call, timeout: timeout).readObjectPath()
            } catch let error as BusCallError where error.name == SystemdManager.noSuchUnit {
                return
            }
            guard let result = try bus.waitForJob(job, until: deadline) else {
                throw SystemdError(
                    code: .timeout,
                    message: "Unit \(name) did not stop within \(timeout). Kill it with `killUnit(name:signal: SIGKILL)`.")
            }
            if result != "done" {
                throw SystemdError(
                    code: .jobFailed,
                    message: "systemd could not stop unit \(name): job result '\(result)'. "
                        + "Kill it with `killUnit(name:signal: SIGKILL)` and check its log.")
            }
        }
    }

    /// Sends `signal` to all processes of unit `name` (`KillUnit` with whom `all`). A unit that is not loaded or
    /// has no process left is not an error.
    public func killUnit(name: String, signal: Int32) throws {
        try withBus("kill unit \(name)", hint: "Check the unit name and the signal number.") { bus in
            let call = try bus.methodCall(member: "KillUnit") { message in
                try message.append(string: name)
                try message.append(string: "all")
                try message.append(int32: signal)
            }
            do {
                _ = try bus.call(call, timeout: self.callTimeout)
            } catch let error as BusCallError
                where error.name == SystemdManager.noSuchUnit || error.name == SystemdManager.noSuchProcess
            {
                return
            }
        }
    }

    /// Mounts `source` at `destination` inside the running unit's mount namespace (`BindMountUnit`, systemd 248+),
    /// creating the mount point. Paths are as systemd sees them. The unit needs a mount namespace of its own, and
    /// the mount point's parent must be writable by systemd there (not a read-only `TemporaryFileSystem=`).
    public func bindMountUnit(name: String, source: String, destination: String, readOnly: Bool) throws {
        try withBus("mount \(source) into unit \(name)", hint: "The unit must run, in a mount namespace of its own (systemd 248 or later).") {
            bus in
            let call = try bus.methodCall(member: "BindMountUnit") { message in
                try message.append(string: name)
                try message.append(string: source)
                try message.append(string: destination)
                try message.append(bool: readOnly)
                try message.append(bool: true)
            }
            _ = try bus.call(call, timeout: self.callTimeout)
        }
    }

    /// Resets the `failed` state of unit `name` (`ResetFailedUnit`), so systemd forgets it. Not loaded is fine.
    public func resetFailedUnit(name: String) throws {
        try withBus("reset unit \(name)", hint: "Check the unit name.") { bus in
            let call = try bus.methodCall(member: "ResetFailedUnit") { try $0.append(string: name) }
            do {
                _ = try bus.call(call, timeout: self.callTimeout)
            } catch let error as BusCallError where error.name == SystemdManager.noSuchUnit {
                return
            }
        }
    }

    /// The state of unit `name`, or nil when systemd has not loaded it.
    public func unitStatus(name: String) throws -> UnitStatus? {
        Telemetry.unitStatusRead()
        return try withBus("read the status of unit \(name)", hint: "Check the unit name.") { bus in
            try self.status(on: bus, name: name)
        }
    }

    /// Names of the loaded units matching a glob `pattern` such as `keyhold-*.service` (any state).
    public func listUnits(matching pattern: String) throws -> [String] {
        try withBus("list units matching \(pattern)", hint: "Check the pattern.") { bus in
            let call = try bus.methodCall(member: "ListUnitsByPatterns") { message in
                try message.append(strings: [])
                try message.append(strings: [pattern])
            }
            let reply = try bus.call(call, timeout: self.callTimeout)
            var names: [String] = []
            try reply.enter("a", "(ssssssouso)")
            while try reply.enter("r", "ssssssouso") {
                names.append(try reply.readString())
                try reply.skip("sssssouso")
                try reply.exit()
            }
            try reply.exit()
            return names
        }
    }

    /// The manager's `SystemState`: `initializing`, `starting`, `running`, `degraded`, `stopping`...
    public func systemState() throws -> String {
        try withBus("read the system state", hint: "") { bus in
            try self.property(
                on: bus, path: BusConnection.managerPath, interface: BusConnection.managerInterface,
                name: "SystemState", type: "s"
            ).readString()
        }
    }

    /// Closes the idle connections (the next call opens one); connections in use are kept when their call returns them.
    public func close() {
        idle.withLock { $0.removeAll() }
    }

    /// An open connection for one call, once a permit is free: an idle one, or a new one.
    private func checkOut() throws -> BusConnection {
        permits.wait()
        while let candidate = idle.withLock({ $0.popLast() }) {
            if candidate.isOpen { return candidate }
        }
        do {
            return try BusConnection(address: address, busClient: isBusClient)
        } catch {
            permits.signal()
            throw error
        }
    }

    /// Returns a connection after a call, with its permit: kept while open, forgotten once dropped.
    private func checkIn(_ bus: BusConnection) {
        if bus.isOpen { idle.withLock { $0.append(bus) } }
        permits.signal()
    }

    // MARK: Internals

    static let noSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"
    static let noSuchProcess = "org.freedesktop.systemd1.NoSuchProcess"
    static let unknownObject = "org.freedesktop.DBus.Error.UnknownObject"

    /// Runs `body` on a connection of its own, reopening it once if it was dropped.
    private func withBus<T>(_ what: String, hint: String, _ body: (BusConnection) throws -> T) throws -> T {
        var reopened = false
        while true {
            let bus = try checkOut()
            defer { checkIn(bus) }
            do {
                return try body(bus)
            } catch let error as BusCallError {
                if error.isConnectionLost || !bus.isOpen {
                    bus.markClosed()
                    if !reopened {
                        reopened = true
                        continue
                    }
                    throw SystemdError(
                        code: .unreachable,
                        message: "Could not \(what): the connection to systemd at \(address) was dropped twice. "
                            + SystemdError.addressHint,
                        busErrorName: error.name, busErrorMessage: error.message, errno: error.errno)
                }
                if error.errno == ETIMEDOUT {
                    throw SystemdError(
                        code: .timeout,
                        message: "Could not \(what): systemd did not answer in time. Check that it "
                            + "is not overloaded (`systemctl status`) and retry.",
                        busErrorName: error.name, busErrorMessage: error.message, errno: error.errno)
                }
                throw SystemdError(
                    code: .callFailed, message: "Could not \(what). \(hint)",
                    busErrorName: error.name, busErrorMessage: error.message ?? String(cString: strerror(error.errno)),
                    errno: error.errno)
            }
        }
    }

    /// Reads one property; the returned message is positioned inside the variant, at the value.
    private func property(
        on bus: BusConnection, path: String, interface: String, name: String, type: String
    ) throws -> BusMessage {
        let call = try bus.methodCall(path: path, interface: "org.freedesktop.DBus.Properties", member: "Get") {
            try $0.append(string: interface)
            try $0.append(string: name)
        }
        let reply = try bus.call(call, timeout: callTimeout)
        try reply.enter("v", type)
        return reply
    }

    private func status(on bus: BusConnection, name: String) throws -> UnitStatus? {
        let getUnit = try bus.methodCall(member: "GetUnit") { try $0.append(string: name) }
        let path: String
        do {
            path = try bus.call(getUnit, timeout: callTimeout).readObjectPath()
        } catch let error as BusCallError where error.name == SystemdManager.noSuchUnit {
            return nil
        }
        do {
            let unit = "org.freedesktop.systemd1.Unit"
            let activeState = try property(on: bus, path: path, interface: unit, name: "ActiveState", type: "s")
                .readString()
            let subState = try property(on: bus, path: path, interface: unit, name: "SubState", type: "s").readString()
            let invocationID = try property(on: bus, path: path, interface: unit, name: "InvocationID", type: "ay")
                .readBytes().map { String(format: "%02x", $0) }.joined()
            var status = UnitStatus(
                name: name, activeState: activeState, subState: subState, invocationID: invocationID, mainPID: 0,
                result: nil, execMainStatus: nil)
            if name.hasSuffix(".service") {
                let service = "org.freedesktop.systemd1.Service"
                status.mainPID = Int32(
                    bitPattern: try property(on: bus, path: path, interface: service, name: "MainPID", type: "u")
                        .readUInt32())
                status.result = try property(on: bus, path: path, interface: service, name: "Result", type: "s")
                    .readString()
                status.execMainStatus = try property(
                    on: bus, path: path, interface: service, name: "ExecMainStatus", type: "i"
                ).readInt32()
            }
            return status
        } catch let error as BusCallError where error.name == SystemdManager.unknownObject {
            return nil  // unloaded between GetUnit and Get
        }
    }

    // MARK: Address resolution

    struct Target: Equatable {
        var address: String
        var busClient: Bool
    }

    static func resolve(_ address: String?) -> Target {
        guard let address, !address.isEmpty else {
            if geteuid() == 0 && access("/run/systemd/private", F_OK) == 0 {
                return Target(address: "unix:path=/run/systemd/private", busClient: false)
            }
            let system = ProcessInfo.processInfo.environment["DBUS_SYSTEM_BUS_ADDRESS"]
            return Target(address: system ?? "unix:path=/run/dbus/system_bus_socket", busClient: true)
        }
        guard let path = socketPath(of: address), path.hasSuffix("/systemd/private") else {
            return Target(address: address, busClient: true)
        }
        if let pid = procPID(in: path), isInOtherPIDNamespace(pid) {
            return Target(address: "unix:path=/proc/\(pid)/root/run/dbus/system_bus_socket", busClient: true)
        }
        return Target(address: address, busClient: false)
    }

    /// The `path=` value of a `unix:` address.
    static func socketPath(of address: String) -> String? {
        guard address.hasPrefix("unix:") else { return nil }
        let keys = address.dropFirst(5).prefix { $0 != ";" }.split(separator: ",")
        return keys.first { $0.hasPrefix("path=") }.map { String($0.dropFirst(5)) }
    }

    /// The root of the file system as the systemd at `address` sees it, from this process: `/proc/<pid>/root` for a
    /// private systemd reached through its namespace (`unix:path=/proc/<pid>/root/...`), else `/`.
    public static func rootDirectory(ofAddress address: String?) -> String {
        guard let address, let path = socketPath(of: address), let pid = procPID(in: path) else { return "/" }
        return "/proc/\(pid)/root"
    }

    /// `<pid>` of a path `/proc/<pid>/root/...`.
    private static func procPID(in path: String) -> Int32? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        guard parts.count > 3, parts[0] == "proc", parts[2] == "root" else { return nil }
        return Int32(parts[1])
    }

    private static func isInOtherPIDNamespace(_ pid: Int32) -> Bool {
        guard let theirs = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid"),
            let ours = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")
        else { return false }
        return theirs != ours
    }
}
