import Foundation
import KeyholdOrchestration
public import KeyholdServer
import Logging

/// A daemon built in this process on a fresh state directory, serving nothing: its control plane, for what needs
/// one without a socket (route lists, render benchmarks). The directory is removed when the value is released.
public final class IdleDaemon {
    public let root: String
    public let daemon: Daemon
    public var plane: ControlPlane { daemon.plane }

    public init(label: String) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString.prefix(8))").path
        let state = root + "/state"
        do {
            _ = try StateDirectory(path: state).initialize()
            let sandbox = SandboxConfiguration(
                systemdBus: nil, systemdEnabled: false, journalDirectory: nil, profilesDirectory: BuildProducts.profilesDirectory,
                execPath: BuildProducts.keyholdExec)
            let options = DaemonOptions(
                stateDirectory: state, socketPath: root + "/admin.sock", tcpAddress: nil, plansDirectory: BuildProducts.plansDirectory,
                sandbox: sandbox, providerBaseURLs: [:], version: "test")
            daemon = try Daemon(options: options, logger: Logger(label: label))
        } catch {
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}
