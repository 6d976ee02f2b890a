import Foundation

/// Crash points for the crash-safety tests: when `KEYHOLD_FAULT` names a point, the daemon kills itself
/// there with SIGKILL, exactly as an operator's `kill -9` or a power cut at that step would.
/// Unset in production; the variable is read once at start. The points, in the order a rotation reaches them:
/// `rotation.before-new-unit`, `rotation.new-unit-starting`, `rotation.after-new-ready`, `rotation.stopping-old`,
/// and `kek.rewrap-batch` (after each committed rewrap batch).
enum FaultInjection {
    private static let armed = ProcessInfo.processInfo.environment["KEYHOLD_FAULT"]

    static func point(_ name: String) {
        guard let armed, armed == name else { return }
        FileHandle.standardError.write(Data("keyhold: fault injection: SIGKILL at \(name)\n".utf8))
        kill(getpid(), SIGKILL)
    }
}

/// The steps at which a ``SandboxService`` may be stopped as a killed daemon would be: the rotation's points of
/// ``FaultInjection``. A daemon stops there only when `KEYHOLD_FAULT` names the point; a test in process may park the
/// task that reaches it instead, forever, and start a second service on the same store and systemd.
public struct CrashPoints: Sendable {
    let reach: @Sendable (String) async -> Void

    /// - Parameter reach: called with each point's name as the service reaches it; it returns to go on.
    public init(_ reach: @escaping @Sendable (String) async -> Void) { self.reach = reach }

    /// `KEYHOLD_FAULT`'s point, where the daemon kills itself with SIGKILL.
    public static let environment = CrashPoints { FaultInjection.point($0) }
}
