import Crypto
import Foundation
import KeyholdEgress
public import KeyholdProxy
import KeyholdSandbox

/// How the daemon runs sandboxes on this host.
public struct SandboxConfiguration: Sendable {
    /// The systemd to talk to: nil for the host's, or an sd-bus address (`unix:path=...`).
    public var systemdBus: String?
    /// Whether any systemd is expected; when false, sandbox operations answer "unavailable".
    public var systemdEnabled: Bool
    /// Where the journal of that systemd lives (nil: the host's).
    public var journalDirectory: String?
    /// The directory of sandbox profiles (`sandbox-profiles/`).
    public var profilesDirectory: String
    /// The absolute path of `keyhold-exec`, the units' `ExecStart`. At start the daemon replaces it with a copy under
    /// `launcherStagingRoot` when sandboxes could not execute it where it is (``LauncherPlacement``).
    public var execPath: String
    /// Where launchers that sandboxes cannot execute where they were built are copied.
    public var launcherStagingRoot = LauncherPlacement.defaultStagingRoot
    /// Crashes tolerated in a row before the sandbox is reported failed.
    public var maximumRestarts: Int
    /// The first restart delay; it doubles with each crash in a row, up to 30 s.
    public var restartBackoff: Duration
    /// How often the reconciler compares units with the database.
    public var reconcileInterval: Duration
    /// How long a start or stop job may take.
    public var jobTimeout: Duration
    /// How long a new agent without sd_notify support must stay up to count as ready in a rotation.
    public var readinessWindow: Duration
    /// How the daemon reaches URLs a tenant chose (its webhook, a key's own base URL): checked as the gateway checks.
    public var tenantDestinations = TenantDestinationClient()
    /// How the egress gateway resolves destination names (static entries from `--egress-hosts`, then DNS).
    public var egressResolver = EgressResolver()
    /// A PEM file of roots the gateway trusts beside the system's when it talks to a host carrying a brokered
    /// secret (a private service's own CA; tests).
    public var egressTrustRoots: String?
    /// How often the state directories of running sandboxes are measured against their plans' `state_max:`.
    public var stateCheckInterval: Duration = .seconds(30)
    /// This daemon's name in the fleet (`--host-id`), recorded on each sandbox it starts.
    public var hostID: String?
    /// How many sandboxes this host takes (`--max-sandboxes`); a start past it is refused (a rotation's new
    /// sandbox is not: it replaces one).
    public var maxSandboxes: Int?
    /// The host's lease (`--lease-seconds`): without a heartbeat for half of it, the host fences itself.
    public var leaseDuration: Duration = .seconds(10)
    /// Names this installation among others on one systemd (a demo beside the service, one test beside another):
    /// it is part of its warm units' names, so that a daemon stops only the warm units its own installation left.
    /// The daemon sets it from its state directory (``installationTag(stateDirectory:)``).
    public var installationTag = SandboxConfiguration.installationTag(stateDirectory: "/var/lib/keyhold")

    /// Six hex digits of the SHA-256 of the state directory's absolute path.
    public static func installationTag(stateDirectory: String) -> String {
        let path = URL(fileURLWithPath: stateDirectory).standardizedFileURL.path
        return SHA256.hash(data: Array(path.utf8)).prefix(3).map { String(format: "%02x", $0) }.joined()
    }

    /// The systemd glob that matches an installation's warm units, of every plan or of `plan`.
    public static func warmUnitPattern(installationTag: String, plan: String? = nil) -> String {
        WarmPool.namePrefix(installationTag: installationTag, plan: plan) + "*.service"
    }

    /// `keyhold-mount`, which mounts a tenant's state into the warm unit a start takes: beside `keyhold-exec`.
    public var mountHelperPath: String { (execPath as NSString).deletingLastPathComponent + "/keyhold-mount" }

    /// The root of systemd's view of the file system from this daemon: `/` for the host's systemd, `/proc/PID/root`
    /// for a private one reached through `unix:path=/proc/PID/root/...` (its own /run, /tmp and pid numbers), or
    /// ``fileSystemRoot`` when set.
    public var systemdRoot: String { fileSystemRoot ?? SystemdManager.rootDirectory(ofAddress: systemdBus) }
    /// Where the files systemd's units see (their name files, agents' state) are, for a systemd that is not reached
    /// over a bus: an in-memory one in tests. Nil: derived from ``systemdBus``.
    public var fileSystemRoot: String?

    public init(
        systemdBus: String?, systemdEnabled: Bool = true, journalDirectory: String?, profilesDirectory: String, execPath: String,
        maximumRestarts: Int = 5, restartBackoff: Duration = .milliseconds(500),
        reconcileInterval: Duration = .milliseconds(500), jobTimeout: Duration = .seconds(30), readinessWindow: Duration = .seconds(2)
    ) {
        self.systemdBus = systemdBus
        self.systemdEnabled = systemdEnabled
        self.journalDirectory = journalDirectory
        self.profilesDirectory = profilesDirectory
        self.execPath = execPath
        self.maximumRestarts = maximumRestarts
        self.restartBackoff = restartBackoff
        self.reconcileInterval = reconcileInterval
        self.jobTimeout = jobTimeout
        self.readinessWindow = readinessWindow
    }
}
