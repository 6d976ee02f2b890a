import Foundation
import KeyholdCore

extension SandboxService {
    /// The directories every agent may write besides its state: each becomes a tmpfs of the plan's `tmp_max`.
    static let temporaryDirectories = ["/tmp", "/var/tmp"]

    /// Covers the unit's `/tmp` and `/var/tmp` with tmpfs of the plan's `tmp_max`, inside the unit's mount namespace,
    /// before the agent runs. systemd's own (`PrivateTmp=`, which `DynamicUser=` implies) are directories on the
    /// host's disk without a limit: one agent could fill the disk that holds the database and the usage journal. A
    /// tmpfs's pages are charged to the memory of the agent that writes them, so together they stay under its
    /// `memory_max`.
    /// - Throws: `KeyholdError.unavailable` when they cannot be mounted: the start is refused, no key injected.
    func boundTemporaryDirectories(unit: String, mainPID: Int32, plan: Plan, deadline: ContinuousClock.Instant) throws {
        try waitForLauncher(mainPID: mainPID, unit: unit, deadline: deadline)
        let namespace = boundary.hostPath("/proc/\(mainPID)/ns/mnt")
        for directory in Self.temporaryDirectories {
            do {
                try stateMounter.mountTemporaryFileSystem(namespace: namespace, bytes: plan.sandbox.tmpMaxBytes, destination: directory)
            } catch {
                throw KeyholdError.unavailable(
                    "cannot give \(unit) a \(directory) bounded by its plan's tmp_max (\(error)): no key was injected; "
                        + "check that keyhold-mount is installed beside keyhold-exec")
            }
        }
    }

    /// Waits until the unit's main process runs keyhold-exec: its mount namespace is then complete (a notify agent's
    /// process is reported as soon as systemd forked it, before its mounts are set up).
    private func waitForLauncher(mainPID: Int32, unit: String, deadline: ContinuousClock.Instant) throws {
        let executable = boundary.hostPath("/proc/\(mainPID)/exe")
        let deadline = min(deadline, ContinuousClock.now + .seconds(2))
        while true {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: executable),
                (target as NSString).lastPathComponent == "keyhold-exec"
            {
                return
            }
            guard FileManager.default.fileExists(atPath: boundary.hostPath("/proc/\(mainPID)")) else {
                throw KeyholdError.unavailable("the process of \(unit) exited before its /tmp could be bounded: see its log")
            }
            guard ContinuousClock.now < deadline else {
                throw KeyholdError.unavailable("the process of \(unit) did not reach keyhold-exec within 2 s: see its log")
            }
            usleep(1_000)
        }
    }
}
