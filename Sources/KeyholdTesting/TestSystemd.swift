import Foundation
import KeyholdSandbox

/// One systemd shared by every test in the process: the host's when PID 1 is systemd, else a private one booted
/// lazily on first use (see `PrivateSystemd`).
///
/// The private instance is spawned with `diesWithThisProcess`: `setpriv --pdeathsig KILL` and
/// `unshare --kill-child` make the kernel kill it (and its whole pid namespace) when the test process exits or
/// crashes, so nothing is left behind even though no test stops it.
///
/// Use it with `@Suite(.serialized, .enabled(if: TestSystemd.shouldRun))` and call `TestSystemd.manager()` in the
/// tests: when systemd cannot be booted the suite is skipped, unless `KEYHOLD_REQUIRE_SYSTEMD=1`, in which case
/// it runs and fails with the boot error.
public enum TestSystemd {
    /// Whether `KEYHOLD_REQUIRE_SYSTEMD=1` is set (CI): then a missing systemd fails the tests instead of skipping.
    public static var isRequired: Bool {
        ProcessInfo.processInfo.environment["KEYHOLD_REQUIRE_SYSTEMD"] == "1"
    }

    /// The shared instance, booted on first access (thread-safe: a lazily initialised global).
    public static let shared: Result<SystemdInstance, SystemdError> = {
        let logDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("keyhold-test-systemd-\(ProcessInfo.processInfo.processIdentifier)").path
        do {
            return .success(
                try PrivateSystemd.hostOrPrivate(
                    logDirectory: logDirectory, diesWithThisProcess: true, timeout: .seconds(90)))
        } catch let error as SystemdError {
            return .failure(error)
        } catch {
            return .failure(SystemdError(code: .bootFailed, message: "\(error)"))
        }
    }()

    /// True when systemd is available, or when it is required (so the tests run and report why it is not).
    public static var shouldRun: Bool {
        if case .success = shared { return true }
        return isRequired
    }

    /// The shared instance, or the error that prevented booting it.
    public static func instance() throws -> SystemdInstance {
        try shared.get()
    }

    /// A new manager connected to the shared instance.
    public static func manager() throws -> SystemdManager {
        SystemdManager(address: try instance().busAddress)
    }
}
