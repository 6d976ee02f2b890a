import Foundation
import KeyholdCore
import KeyholdSandbox

/// ``UnitNamespaces`` on this host: through `/proc/PID/ns/*` of units' main processes (as systemd numbers them, seen
/// from this daemon through `root`), with `keyhold-mount` for mounts.
final class HostNamespaces: UnitNamespaces {
    /// The file system as systemd sees it, from this daemon: `/`, or `/proc/PID/root` for a private systemd.
    let root: String
    private let mounter: StateMounter

    init(root: String, mountHelperPath: String) {
        self.root = root
        self.mounter = StateMounter(helperPath: mountHelperPath, systemdNamespace: Self.path("/proc/1/ns/mnt", under: root))
    }

    private func hostPath(_ path: String) -> String { Self.path(path, under: root) }

    private static func path(_ path: String, under root: String) -> String { root == "/" ? path : root + path }

    func listeners(unit: String, mainPID: Int32, on addresses: [LoopbackAddress], deadline: ContinuousClock.Instant) throws -> [Int32] {
        let namespace = hostPath("/proc/\(mainPID)/ns/net")
        // Setting up a namespace takes systemd milliseconds: waiting longer means something is wrong, and a notify
        // agent's wait holds the bus for everyone.
        let deadline = min(deadline, ContinuousClock.now + .seconds(2))
        try waitForOwnNamespace(namespace, deadline: deadline)
        let foreign = NetworkNamespace.inode(of: hostPath("/proc/1/ns/net")).map { [$0] } ?? []
        // Right after systemd made the namespace its loopback may not be up yet (EADDRNOTAVAIL): try again shortly.
        while true {
            do {
                return try NetworkNamespace.listeners(in: namespace, on: addresses, notIn: foreign)
            } catch let error as SystemdError where error.errno == EADDRNOTAVAIL && ContinuousClock.now < deadline {
                usleep(5_000)
            }
        }
    }

    func mountTemporaryFileSystems(
        unit: String, mainPID: Int32, bytes: UInt64, at directories: [String], deadline: ContinuousClock.Instant
    ) throws {
        try waitForLauncher(mainPID: mainPID, unit: unit, deadline: deadline)
        let namespace = hostPath("/proc/\(mainPID)/ns/mnt")
        for directory in directories {
            do {
                try mounter.mountTemporaryFileSystem(namespace: namespace, bytes: bytes, destination: directory)
            } catch {
                throw KeyholdError.unavailable(
                    "cannot give \(unit) a \(directory) bounded by its plan's tmp_max (\(error)): no key was injected; "
                        + "check that keyhold-mount is installed beside keyhold-exec")
            }
        }
    }

    func attach(unit: String, mainPID: Int32, source: String, destination: String, readOnly: Bool) throws {
        try mounter.attach(namespace: hostPath("/proc/\(mainPID)/ns/mnt"), source: source, destination: destination, readOnly: readOnly)
    }

    /// From `/proc/PID/status` (in systemd's pid namespace).
    func owner(unit: String, mainPID: Int32) -> UInt32? {
        guard mainPID > 0, let status = try? String(contentsOfFile: hostPath("/proc/\(mainPID)/status"), encoding: .utf8) else { return nil }
        let line = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }
        return line?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
    }

    /// Waits until the process is in a network namespace of its own: a notify agent's main process is reported
    /// as soon as systemd forked it, possibly before its namespaces are set up.
    private func waitForOwnNamespace(_ namespace: String, deadline: ContinuousClock.Instant) throws {
        let systemdNamespace = NetworkNamespace.inode(of: hostPath("/proc/1/ns/net"))
        while true {
            guard let inode = NetworkNamespace.inode(of: namespace) else {
                throw KeyholdError.unavailable("the sandbox's process exited before its network boundary could be opened: see its log")
            }
            if inode != systemdNamespace, inode != NetworkNamespace.ownInode { return }
            guard ContinuousClock.now < deadline else {
                throw KeyholdError.unavailable(
                    "the sandbox's process has no network namespace of its own (\(namespace)): its profile must set PrivateNetwork=yes")
            }
            usleep(1_000)
        }
    }

    /// Waits until the unit's main process runs keyhold-exec: its mount namespace is then complete (a notify agent's
    /// process is reported as soon as systemd forked it, before its mounts are set up).
    private func waitForLauncher(mainPID: Int32, unit: String, deadline: ContinuousClock.Instant) throws {
        let executable = hostPath("/proc/\(mainPID)/exe")
        let deadline = min(deadline, ContinuousClock.now + .seconds(2))
        while true {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: executable),
                (target as NSString).lastPathComponent == "keyhold-exec"
            {
                return
            }
            guard FileManager.default.fileExists(atPath: hostPath("/proc/\(mainPID)")) else {
                throw KeyholdError.unavailable("the process of \(unit) exited before its /tmp could be bounded: see its log")
            }
            guard ContinuousClock.now < deadline else {
                throw KeyholdError.unavailable("the process of \(unit) did not reach keyhold-exec within 2 s: see its log")
            }
            usleep(1_000)
        }
    }
}
