import Foundation
import KeyholdClient
import KeyholdOrchestration
import KeyholdServer
import KeyholdTesting

/// Another daemon of the fleet on a harness's store, KEK and systemd, as host `id`, with a fast reconciler. On
/// PostgreSQL it has a state directory of its own, with copies of the harness's KEK files (as a fleet's hosts
/// each hold the fleet's KEK); on SQLite it shares the harness's (the database is a file there). Its log is kept
/// for a failing test's message; it is stopped by its own pid.
final class FleetHost {
    let id: String
    let stateDirectory: String
    let process = Process()
    let socket: String
    let logPath: String
    private let keyhold: KeyholdHarness

    init(_ sandboxes: SandboxHarness, id: String, extraArguments: [String] = []) throws {
        self.id = id
        keyhold = sandboxes.keyhold
        socket = sandboxes.keyhold.root + "/\(id).sock"
        logPath = sandboxes.keyhold.root + "/\(id).log"
        stateDirectory = sandboxes.keyhold.database == nil ? sandboxes.keyhold.stateDirectory : sandboxes.keyhold.root + "/\(id)-state"
        if stateDirectory != sandboxes.keyhold.stateDirectory { try Self.copyKEKs(from: sandboxes.keyhold.stateDirectory, to: stateDirectory) }
        var arguments = ["serve", "--state-dir", stateDirectory, "--socket", socket, "--host-id", id]
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

    /// Copies the KEK files (current, previous, the audit signing key) into a state directory of its own.
    private static func copyKEKs(from source: String, to target: String) throws {
        let files = FileManager.default
        try files.createDirectory(atPath: target + "/kek.d", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let previous = (try? files.contentsOfDirectory(atPath: source + "/kek.d")) ?? []
        for name in ["kek", "audit-signing.key"] + previous.map({ "kek.d/" + $0 }) {
            try? files.removeItem(atPath: target + "/" + name)
            try files.copyItem(atPath: source + "/" + name, toPath: target + "/" + name)
        }
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Runs the CLI against this host's admin socket.
    func cli(_ arguments: [String]) throws -> ProcessResult {
        try ProcessRunner.run(
            BuildProducts.keyhold, arguments + ["--state-dir", stateDirectory, "--socket", socket], environment: keyhold.environment)
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
