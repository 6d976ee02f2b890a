import Foundation
import GRDB
import KeyholdOrchestration
import KeyholdServer
public import KeyholdStore

/// A real Keyhold installation for one test: a temporary state directory made by `keyhold init`, the real
/// daemon (`keyhold serve`) on a temporary Unix socket, and the real CLI run against it.
///
/// The daemon is stopped by its own pid (SIGTERM) in `stop()`; the directory is removed in `deinit`.
public final class KeyholdHarness: @unchecked Sendable {
    public let root: String
    public let stateDirectory: String
    public let socketPath: String
    /// Everything the daemon wrote to stderr (its log), for canary searches.
    public let daemonLogPath: String
    /// The PostgreSQL database this installation uses (`KEYHOLD_TEST_STORE=postgresql`), or nil for its SQLite file.
    public let database: (name: String, url: String)?
    private var daemon: Process?
    /// Every CLI output so far, for canary searches.
    public private(set) var cliOutputs: [String] = []

    /// Creates and initialises a state directory, its store in `database` when given (a PostgreSQL database the
    /// test made), else as `KEYHOLD_TEST_STORE` says.
    public init(database: (name: String, url: String)? = nil) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-test-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        stateDirectory = root + "/state"
        socketPath = root + "/admin.sock"
        daemonLogPath = root + "/daemon.log"
        self.database = try database ?? (SharedTestPostgres.serverTestsUsePostgres ? SharedTestPostgres.makeDatabase(prefix: "keyhold") : nil)
        let result = try cli(["init"])
        guard result.status == 0 else { throw HarnessError("keyhold init failed: \(result.stderr)") }
    }

    deinit {
        if let daemon, daemon.isRunning {
            kill(daemon.processIdentifier, SIGKILL)
            daemon.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: root)
        // The agent state systemd made for this test's tenants (StateDirectory=keyhold-agents/TENANT).
        for tenant in tenantsCreated {
            try? FileManager.default.removeItem(atPath: "/var/lib/private/keyhold-agents/\(tenant)")
            unlink("/var/lib/keyhold-agents/\(tenant)")
        }
    }

    /// Tenants created through `cli`, whose agent state is removed with the harness.
    private var tenantsCreated: [String] = []

    /// The arguments that point a command at this installation.
    public var globalArguments: [String] { ["--state-dir", stateDirectory, "--socket", socketPath] }

    /// The environment every command of this installation runs with: the database's URL (which holds its password)
    /// goes in `KEYHOLD_DATABASE`, never in argv.
    public var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let database { environment["KEYHOLD_DATABASE"] = database.url }
        return environment
    }

    /// The store's location: the PostgreSQL URL, or the SQLite file in the state directory.
    public var storeLocation: String { database?.url ?? stateDirectory + "/keyhold.db" }

    /// Opens this installation's store (beside the daemon, as another host or an offline command would).
    public func openStore() throws -> Store { try Store.open(location: storeLocation) }

    /// Changes the database behind Keyhold's back, as an attacker with the file or the server would; `postgresql`
    /// replaces `sql` where the two dialects differ.
    public func tamper(_ sql: String, postgresql: String? = nil) throws {
        if let database {
            try SharedTestPostgres.get().execute(postgresql ?? sql, database: database.name)
        } else {
            let queue = try DatabaseQueue(path: storeLocation)
            try queue.write { db in try db.execute(sql: sql) }
        }
    }

    /// Runs `keyhold ARGS --state-dir ... --socket ...` to completion.
    @discardableResult
    public func cli(_ arguments: [String], input: [UInt8]? = nil) throws -> ProcessResult {
        let result = try ProcessRunner.run(BuildProducts.keyhold, arguments + globalArguments, input: input, environment: self.environment)
        cliOutputs.append(result.output)
        if arguments.starts(with: ["tenant", "create"]), arguments.count > 2 { tenantsCreated.append(arguments[2]) }
        return result
    }

    /// Starts `keyhold serve` and waits until its socket accepts connections (bounded: 30 s).
    /// - Parameters:
    ///   - systemdBus: the systemd to use; nil runs the daemon with `--no-systemd`.
    ///   - environment: extra environment variables for the daemon (e.g. `KEYHOLD_FAULT`).
    public func startDaemon(systemdBus: String?? = .some(nil), extraArguments: [String] = [], environment: [String: String] = [:]) throws {
        var arguments = ["serve"] + globalArguments + ["--plans", BuildProducts.plansDirectory, "--exec-path", BuildProducts.keyholdExec]
        arguments += ["--profiles", BuildProducts.profilesDirectory]
        switch systemdBus {
        case .none: arguments.append("--no-systemd")
        case .some(.none): break
        case .some(.some(let address)): arguments += ["--systemd-bus", address]
        }
        arguments += extraArguments
        _ = FileManager.default.createFile(atPath: daemonLogPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: daemonLogPath))
        log.seekToEndOfFile()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BuildProducts.keyhold)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        let notify = try NotifySocket(path: root + "/notify.sock")
        process.environment = self.environment.merging(environment) { $1 }.merging(["NOTIFY_SOCKET": notify.path]) { $1 }
        process.standardOutput = log
        process.standardError = log
        try process.run()
        daemon = process
        let deadline = Date().addingTimeInterval(30)
        // Ready means READY=1, as systemd sees it: every listener bound and the socket's mode set.
        while Date() < deadline {
            if let message = notify.receive(milliseconds: 20), message.split(separator: "\n").contains("READY=1") { return }
            if !process.isRunning { throw HarnessError("keyhold serve exited with \(process.terminationStatus): \(daemonLog)") }
        }
        throw HarnessError("keyhold serve did not send READY=1 within 30 s: \(daemonLog)")
    }

    /// Waits until the daemon exits by itself (a crash-injection test), bounded by `timeout` seconds.
    /// - Returns: whether it exited.
    public func waitForDaemonExit(timeout: Double = 30) -> Bool {
        guard let daemon else { return true }
        let deadline = Date().addingTimeInterval(timeout)
        while daemon.isRunning && Date() < deadline { usleep(20_000) }
        if daemon.isRunning { return false }
        self.daemon = nil
        return true
    }

    /// The daemon's pid, while it runs.
    public var daemonPID: Int32? { daemon.flatMap { $0.isRunning ? $0.processIdentifier : nil } }

    /// Deletes every tenant of this installation through the daemon: their sandboxes stop, their keys are destroyed and
    /// their agents' state directories (outside this installation's directory) are removed. For teardowns.
    /// - Returns: the tenants that could not be deleted, with the daemon's answer.
    @discardableResult
    public func deleteTenants() -> [String] {
        guard let listed = try? cli(["tenant", "list", "--json"]), listed.status == 0,
            let tenants = try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]
        else { return ["(tenant list failed)"] }
        return tenants.compactMap { $0["name"] as? String }.filter { name in
            (try? cli(["tenant", "delete", name, "--yes"]))?.status != 0
        }
    }

    /// Sends `signal` to the daemon (by its pid) and waits for it to exit.
    /// - Returns: its exit status (or the signal that killed it).
    @discardableResult
    public func stopDaemon(signal: Int32 = SIGTERM) -> Int32 {
        guard let daemon else { return 0 }
        if daemon.isRunning { kill(daemon.processIdentifier, signal) }
        daemon.waitUntilExit()
        self.daemon = nil
        return daemon.terminationStatus
    }

    public var daemonLog: String { (try? String(contentsOfFile: daemonLogPath, encoding: .utf8)) ?? "" }

    /// Every regular file under `directory` whose bytes contain `needle`.
    public static func files(under directory: String, containing needle: String) -> [String] {
        let bytes = Data(needle.utf8)
        var hits: [String] = []
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        while let relative = enumerator.nextObject() as? String {
            let path = (directory as NSString).appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), attributes[.type] as? FileAttributeType == .typeRegular
            else { continue }
            if let data = FileManager.default.contents(atPath: path), data.range(of: bytes) != nil { hits.append(path) }
        }
        return hits
    }
}

/// A test set-up that failed.
public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
