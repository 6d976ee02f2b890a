import Foundation
import KeyholdServer
import KeyholdTesting

/// Another daemon of the fleet on a harness's state (its store and KEK) and systemd, as host `id`, with a fast
/// reconciler. Its log is kept for a failing test's message; it is stopped by its own pid.
final class FleetHost {
    let id: String
    let process = Process()
    let socket: String
    let logPath: String
    private let keyhold: KeyholdHarness

    init(_ sandboxes: SandboxHarness, id: String, extraArguments: [String] = []) throws {
        self.id = id
        keyhold = sandboxes.keyhold
        socket = sandboxes.keyhold.root + "/\(id).sock"
        logPath = sandboxes.keyhold.root + "/\(id).log"
        var arguments = ["serve", "--state-dir", sandboxes.keyhold.stateDirectory, "--socket", socket, "--host-id", id]
        arguments += ["--plans", BuildProducts.plansDirectory, "--exec-path", BuildProducts.keyholdExec, "--reconcile-interval-ms", "50"]
        arguments += ["--systemd-bus", sandboxes.systemdBus ?? ""] + sandboxes.daemonArguments + extraArguments
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: BuildProducts.keyhold)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.environment = sandboxes.keyhold.environment
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = ContinuousClock.now + .seconds(30)
        while !UnixSocketProbe.isListening(socket) {
            guard process.isRunning, ContinuousClock.now < deadline else { throw HarnessError("host \(id) did not start: \(self.log)") }
            usleep(20_000)
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Runs the CLI against this host's admin socket.
    func cli(_ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(
            BuildProducts.keyhold, arguments + ["--state-dir", keyhold.stateDirectory, "--socket", socket], environment: keyhold.environment)
    }

    /// Kills the daemon at once (SIGKILL), as a host's death would; its units are the test's to stop.
    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
    }
}
