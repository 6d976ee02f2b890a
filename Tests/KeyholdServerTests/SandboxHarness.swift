import Foundation
import KeyholdSandbox
import KeyholdTesting
import Testing

/// A Keyhold installation whose daemon starts sandboxes on the shared real systemd.
struct SandboxHarness {
    let keyhold: KeyholdHarness
    let systemd: SystemdInstance
    let manager: SystemdManager

    let daemonArguments: [String]
    let systemdBus: String?

    init(
        profilesDirectory: String = BuildProducts.profilesDirectory, systemdBus: String? = nil, extraArguments: [String] = [],
        database: (name: String, url: String)? = nil
    ) throws {
        systemd = try TestSystemd.instance()
        manager = try TestSystemd.manager()
        keyhold = try KeyholdHarness(database: database)
        var arguments = ["--profiles", profilesDirectory, "--max-restarts", "2", "--restart-backoff-ms", "100"] + extraArguments
        if let journal = systemd.journalDirectory { arguments += ["--journal-directory", journal] }
        daemonArguments = arguments
        self.systemdBus = systemdBus ?? systemd.busAddress
        try keyhold.startDaemon(systemdBus: .some(self.systemdBus), extraArguments: arguments)
    }

    /// Starts the daemon again with the same arguments (after a stop or a crash).
    func restartDaemon(environment: [String: String] = [:]) throws {
        try keyhold.startDaemon(systemdBus: .some(systemdBus), extraArguments: daemonArguments, environment: environment)
    }

    /// The active units of a tenant right now, with their invocation ids.
    func activeUnits(tenant: String) throws -> [String: String] {
        var result: [String: String] = [:]
        for unit in try manager.listUnits(matching: "keyhold-\(tenant)-*.service") {
            if let status = try manager.unitStatus(name: unit), status.activeState == "active" { result[unit] = status.invocationID }
        }
        return result
    }

    /// Creates a tenant with an agent command line (one string, shell-quoted).
    func tenant(_ name: String, plan: String = "byok", agent: String) throws {
        let result = try keyhold.cli(["tenant", "create", name, "--plan", plan, "--agent", agent])
        try #require(result.status == 0, "\(result.stderr)")
    }

    func setKey(_ tenant: String, _ key: String, provider: String = "anthropic") throws {
        let result = try keyhold.cli(["key", "set", tenant, provider, "--no-validate"], input: Array(key.utf8))
        try #require(result.status == 0, "\(result.stderr)")
    }

    func start(_ tenant: String) throws -> ProcessResult { try keyhold.cli(["sandbox", "start", tenant, "--json"]) }

    /// Polls the tenant's journal until a line contains `marker` (bounded: 20 s): the agent reports asynchronously.
    /// In an async test it sleeps without holding a thread: the in-process fake servers of the tests running beside
    /// it answer on the same pool of threads.
    func waitForLog(_ tenant: String, containing marker: String, timeout: Double = 20) async throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try keyhold.cli(["sandbox", "logs", tenant, "--lines", "200"]).stdout
            if let line = last.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no '\(marker)' in the journal of \(tenant) within \(Int(timeout)) s; last logs: \(last)")
        return ""
    }

    /// The same, for a synchronous test (which has a thread of its own to block).
    func waitForLog(_ tenant: String, containing marker: String, timeout: Double = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        var last = ""
        while Date() < deadline {
            last = try keyhold.cli(["sandbox", "logs", tenant, "--lines", "200"]).stdout
            if let line = last.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            usleep(50_000)
        }
        Issue.record("no '\(marker)' in the journal of \(tenant) within \(Int(timeout)) s; last logs: \(last)")
        return ""
    }

    /// Polls the audit log until `predicate` holds (bounded: 30 s).
    func waitForAudit(_ description: String, _ predicate: (String) -> Bool) async throws -> String {
        let deadline = Date().addingTimeInterval(30)
        var audit = ""
        while Date() < deadline {
            audit = try keyhold.cli(["audit", "export"]).stdout
            if predicate(audit) { return audit }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("audit never showed \(description): \(audit)")
        return audit
    }

    /// The same, for a synchronous test.
    func waitForAudit(_ description: String, _ predicate: (String) -> Bool) throws -> String {
        let deadline = Date().addingTimeInterval(30)
        var audit = ""
        while Date() < deadline {
            audit = try keyhold.cli(["audit", "export"]).stdout
            if predicate(audit) { return audit }
            usleep(100_000)
        }
        Issue.record("audit never showed \(description): \(audit)")
        return audit
    }

    /// Units of this installation's tenant still loaded in systemd.
    func loadedUnits(tenant: String) throws -> [String] {
        try manager.listUnits(matching: "keyhold-\(tenant)-*.service").filter { unit in
            guard let status = try manager.unitStatus(name: unit) else { return false }
            return status.activeState != "inactive"
        }
    }

    /// `systemctl show UNIT`, run where that systemd lives (inside the private namespace when there is one).
    func systemctlShow(_ unit: String) throws -> String {
        switch systemd {
        case .host:
            return try ProcessRunner.run("/bin/systemctl", ["show", unit]).stdout
        case .privateInstance(let instance):
            return try ProcessRunner.run("/usr/bin/nsenter", ["-t", String(instance.systemdPID), "-m", "-p", "/bin/systemctl", "show", unit]).stdout
        }
    }

    static func sha256(_ text: String) throws -> String {
        let result = try ProcessRunner.run("/usr/bin/sha256sum", [], input: Array(text.utf8))
        return String(result.stdout.prefix(64))
    }

    /// The `check NAME RESULT` lines an agent printed (the last result of each name wins).
    func checks(_ tenant: String) throws -> [String: String] {
        var results: [String: String] = [:]
        for line in try keyhold.cli(["sandbox", "logs", tenant, "--lines", "500"]).stdout.split(separator: "\n") {
            guard let range = line.range(of: "check ") else { continue }
            let parts = line[range.upperBound...].split(separator: " ", maxSplits: 1).map(String.init)
            if parts.count == 2 { results[parts[0]] = parts[1] }
        }
        return results
    }

    /// The objects of a JSON array (or the one object) a CLI printed.
    static func jsonObjects(_ text: String) -> [[String: Any]] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) else { return [] }
        return (object as? [[String: Any]]) ?? ((object as? [String: Any]).map { [$0] } ?? [])
    }

    static func canary() -> String { "sk-ant-canary-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    /// A unique tenant name (units of every test share one systemd).
    static func tenantName(_ prefix: String) -> String { "\(prefix)-\(UUID().uuidString.prefix(6).lowercased())" }

    /// A process's environment, by its pid as systemd numbers it (a private systemd has a pid namespace of its own).
    func environment(ofPID pid: Int) -> Data {
        let root = if case .privateInstance(let instance) = systemd { instance.rootDirectory } else { "" }
        return FileManager.default.contents(atPath: root + "/proc/\(pid)/environ") ?? Data()
    }

    /// A file as a sandbox's process sees it (its own mount namespace), by the process's pid as systemd numbers it.
    func file(_ path: String, asSeenByPID pid: Int) -> String {
        let root = if case .privateInstance(let instance) = systemd { instance.rootDirectory } else { "" }
        return (try? String(contentsOfFile: root + "/proc/\(pid)/root" + path, encoding: .utf8)) ?? ""
    }

    /// The main pid in `sandbox start --json` output.
    static func mainPID(_ json: String) -> Int? {
        guard let data = json.data(using: .utf8), let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return object["main_pid"] as? Int
    }
}
