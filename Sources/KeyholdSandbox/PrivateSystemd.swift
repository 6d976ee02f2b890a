import Foundation
import Glibc
import Synchronization

/// A private systemd booted in its own pid and mount namespace, for development, tests and demos on machines
/// whose PID 1 is not systemd (see DESIGN.md, "A real systemd on machines without one").
///
/// It is started as `unshare --pid --fork --mount --mount-proc --propagation private sh -c 'for d in /run /tmp
/// /var/tmp; do mount -t tmpfs tmpfs $d; done; exec /lib/systemd/systemd --system'` (plus `--kill-child`, so
/// systemd dies with the `unshare` process, and by default `--unit=sockets.target`, see `minimalUnit`), and
/// stopped by killing its own pid, which ends the whole namespace. Run one at a time per machine: instances share
/// the host's cgroup tree and disturb each other.
/// Requires root, util-linux `unshare`/`setpriv`, and dbus-daemon (its socket is how clients outside the
/// namespace reach systemd).
public final class PrivateSystemd: @unchecked Sendable {
    /// The shell line run inside the new namespaces: a tmpfs on /run, /tmp and /var/tmp (systemd-tmpfiles
    /// empties /tmp at boot; without its own tmpfs it would empty the host's), then systemd as its PID 1.
    public static let bootScript = bootScript(defaultUnit: nil)

    /// The default `--unit=`: `sockets.target` pulls in sysinit, journald and dbus, and none of the host's enabled
    /// services. With the default target, each boot starts the host's own services (postgresql on the host's
    /// data directory, timers, gettys); SIGKILL then leaves them unclean and later boots can hang in `starting`.
    public static let minimalUnit = "sockets.target"

    /// The boot line with systemd's `--unit=` (for example `sockets.target`: dbus and journald only, none of the
    /// host's enabled services, timers or gettys); nil boots the default target like DESIGN.md.
    public static func bootScript(defaultUnit: String?) -> String {
        let unit = defaultUnit.map { " --unit=\($0)" } ?? ""
        // Shared propagation inside the namespace, as systemd sets it up as a host's PID 1: `BindMountUnit` (a warm
        // unit's state) reaches a unit's mount namespace through it. The unshare's private propagation keeps it from the host.
        return "for d in /run /tmp /var/tmp /var/log; do mount -t tmpfs tmpfs $d; done; mount --make-rshared /; "
            + "exec /lib/systemd/systemd --system\(unit)"
    }

    /// The pid of the `unshare` process (our child).
    public let unsharePID: Int32
    /// The pid (in our namespace) of the private systemd, PID 1 of its namespace.
    public let systemdPID: Int32
    /// The log file of systemd's console output, when a log directory was given.
    public let logFile: String?

    /// The sd-bus address clients use: the namespace's dbus-daemon socket, reached through `/proc/<pid>/root`.
    ///
    /// systemd's own `/run/systemd/private` socket refuses clients outside its pid namespace (it cannot read
    /// their pid), so `SystemdManager` also maps `privateSocketAddress` to this one.
    public var busAddress: String { "unix:path=/proc/\(systemdPID)/root/run/dbus/system_bus_socket" }
    /// `unix:path=/proc/<pid>/root/run/systemd/private` (only usable from inside the namespace).
    public var privateSocketAddress: String { "unix:path=/proc/\(systemdPID)/root/run/systemd/private" }
    /// The namespace's root directory, to pass to `UnitJournal` as `journalDirectory`.
    public var rootDirectory: String { "/proc/\(systemdPID)/root" }

    private let process: Process
    private let spawner: DeathSignalSpawner?
    /// The machine-wide lock (set once booted; released when stopped), and whether it was stopped.
    private let state = Mutex<(machineLock: PrivateSystemdLock?, stopped: Bool)>((nil, false))

    private init(process: Process, spawner: DeathSignalSpawner?, systemdPID: Int32, logFile: String?) {
        self.process = process
        self.spawner = spawner
        self.unsharePID = process.processIdentifier
        self.systemdPID = systemdPID
        self.logFile = logFile
    }

    deinit {
        try? stop()
    }

    // MARK: Host detection

    /// Whether this machine's PID 1 is systemd (`/proc/1/comm` is `systemd` and `/run/systemd/system` exists).
    public static var hostHasSystemd: Bool {
        let comm = (try? String(contentsOfFile: "/proc/1/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
        return comm == "systemd" && FileManager.default.fileExists(atPath: "/run/systemd/system")
    }

    /// The host's systemd when PID 1 is systemd, else a freshly booted private one.
    public static func hostOrPrivate(
        logDirectory: String? = nil, diesWithThisProcess: Bool = false, defaultUnit: String? = PrivateSystemd.minimalUnit,
        timeout: Duration = .seconds(60)
    ) throws -> SystemdInstance {
        if hostHasSystemd { return .host }
        return .privateInstance(
            try boot(
                logDirectory: logDirectory, diesWithThisProcess: diesWithThisProcess, defaultUnit: defaultUnit,
                timeout: timeout))
    }

    // MARK: Boot and stop

    /// Boots a private systemd and waits (polling `SystemState` until `timeout`) until it is `running` or
    /// `degraded`.
    ///
    /// - Parameters:
    ///   - logDirectory: where to write `private-systemd.log` (systemd's console output); nil discards it.
    ///   - diesWithThisProcess: kill the instance when this process dies, even without `stop()` (it is spawned
    ///     through `setpriv --pdeathsig KILL` from a thread that lives until `stop()`).
    ///   - defaultUnit: systemd's `--unit=`; nil boots the default target (all the host's enabled services), as
    ///     DESIGN.md's line does.
    public static func boot(
        logDirectory: String? = nil, diesWithThisProcess: Bool = false, defaultUnit: String? = PrivateSystemd.minimalUnit,
        timeout: Duration = .seconds(60)
    ) throws -> PrivateSystemd {
        let deadline = ContinuousClock.now + timeout
        guard geteuid() == 0 else {
            throw bootError("booting a private systemd needs root (it creates pid and mount namespaces).")
        }
        for tool in ["/lib/systemd/systemd", "/usr/bin/unshare", "/usr/bin/setpriv"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            throw bootError("\(tool) is missing; install systemd and util-linux.")
        }

        let machineLock = try PrivateSystemdLock(deadline: deadline)
        let process = Process()
        var arguments = [
            "unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount", "--mount-proc",
            "--propagation", "private", "sh", "-c", bootScript(defaultUnit: defaultUnit),
        ]
        if diesWithThisProcess {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            arguments = ["--pdeathsig", "KILL", "--"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            arguments.removeFirst()
        }
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        var logFile: String? = nil
        if let logDirectory {
            try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
            let path = (logDirectory as NSString).appendingPathComponent("private-systemd.log")
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            guard let handle = FileHandle(forWritingAtPath: path) else {
                throw bootError("cannot write its log file \(path).")
            }
            process.standardOutput = handle
            process.standardError = handle
            logFile = path
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }

        let spawner: DeathSignalSpawner?
        if diesWithThisProcess {
            let threadSpawner = DeathSignalSpawner()
            try threadSpawner.run(process)
            spawner = threadSpawner
        } else {
            try process.run()
            spawner = nil
        }

        let logHint = logFile.map { " Its console output is in \($0)." } ?? " Pass a log directory to keep its output."
        let unsharePID = process.processIdentifier
        // The inner systemd is the child of unshare (sh exec's it, so it keeps sh's pid).
        var systemdPID: Int32? = nil
        while systemdPID == nil {
            systemdPID = childPIDs(of: unsharePID).first { commandName(of: $0) == "systemd" }
            if systemdPID != nil { break }
            if !process.isRunning || ContinuousClock.now >= deadline {
                killAndReap(process, spawner: spawner)
                throw bootError("unshare (pid \(unsharePID)) did not start systemd.\(logHint)")
            }
            usleep(20_000)  // poll interval; the deadline bounds the wait
        }
        let instance = PrivateSystemd(process: process, spawner: spawner, systemdPID: systemdPID!, logFile: logFile)
        instance.state.withLock { $0.machineLock = machineLock }

        let manager = SystemdManager(address: instance.busAddress, callTimeout: .seconds(5))
        var lastState = "no answer"
        while true {
            if let state = try? manager.systemState() {
                lastState = state
                if state == "running" || state == "degraded" { break }
            }
            if !process.isRunning || ContinuousClock.now >= deadline {
                try? instance.stop()
                throw bootError(
                    "systemd (pid \(instance.systemdPID)) did not reach running within \(timeout) "
                        + "(last state: \(lastState)); is dbus installed?\(logHint)")
            }
            usleep(50_000)  // poll interval; the deadline bounds the wait
        }
        manager.close()
        return instance
    }

    /// Stops the instance: SIGKILL to its systemd (PID 1 of the namespace, so the kernel kills every process in
    /// it), then waits for `unshare` to exit. Safe to call twice.
    public func stop(timeout: Duration = .seconds(10)) throws {
        try state.withLock { state in try stop(&state, timeout: timeout) }
    }

    private func stop(_ state: inout (machineLock: PrivateSystemdLock?, stopped: Bool), timeout: Duration) throws {
        if state.stopped { return }
        // Only kill the pid if it is still our systemd (a child of our unshare), never a reused pid.
        if PrivateSystemd.parentPID(of: systemdPID) == unsharePID {
            kill(systemdPID, SIGKILL)
        } else if process.isRunning {
            kill(unsharePID, SIGKILL)
        }
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now >= deadline {
                throw PrivateSystemd.bootError("unshare (pid \(unsharePID)) did not exit after its systemd was killed.")
            }
            usleep(10_000)  // poll interval; the deadline bounds the wait
        }
        spawner?.release()
        state.machineLock?.release()
        state.stopped = true
    }

    // MARK: Helpers

    private static func killAndReap(_ process: Process, spawner: DeathSignalSpawner?) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        spawner?.release()
    }

    static func childPIDs(of pid: Int32) -> [Int32] {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return [] }
        return tasks.flatMap { task -> [Int32] in
            let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? ""
            return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }

    static func commandName(of pid: Int32) -> String? {
        (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The parent pid from `/proc/<pid>/stat` (the field after the parenthesised command name and the state).
    static func parentPID(of pid: Int32) -> Int32? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 ? Int32(fields[1]) : nil
    }

    static func bootError(_ text: String) -> SystemdError {
        SystemdError(
            code: .bootFailed,
            message: "Could not boot a private systemd: \(text) On a host whose PID 1 is systemd, use the host's "
                + "systemd instead.")
    }
}

/// Where units run: the host's systemd or a private instance.
public enum SystemdInstance: Sendable {
    /// The host's systemd (PID 1).
    case host
    /// A private systemd this process booted.
    case privateInstance(PrivateSystemd)

    /// The bus address for `SystemdManager(address:)`; nil for the host's systemd.
    public var busAddress: String? {
        switch self {
        case .host: return nil
        case .privateInstance(let instance): return instance.busAddress
        }
    }

    /// The directory for `UnitJournal.lines(unit:journalDirectory:limit:)`; nil for the host's journal.
    public var journalDirectory: String? {
        switch self {
        case .host: return nil
        case .privateInstance(let instance): return instance.rootDirectory
        }
    }

    /// Stops a private instance; does nothing for the host.
    public func stop() throws {
        if case .privateInstance(let instance) = self { try instance.stop() }
    }
}
