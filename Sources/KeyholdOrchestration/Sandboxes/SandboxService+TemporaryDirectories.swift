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
        try namespaces.mountTemporaryFileSystems(
            unit: unit, mainPID: mainPID, bytes: plan.sandbox.tmpMaxBytes, at: Self.temporaryDirectories, deadline: deadline)
    }
}
