import BenchmarkSupport
import Foundation
import KeyholdClient
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdTesting

/// One benchmark run: a systemd (the host's or a private one), the real `keyhold serve` against it, and the figures.
final class Bench: @unchecked Sendable {
    /// The idle agent of every unit started here.
    static let agent = ["/bin/sleep", "infinity"]
    static let jobTimeout: Duration = .seconds(30)
    /// The plan of the warm starts: `byok` with a warm pool.
    static let warmPlan = "byok-warm"
    static let warmPoolSize = 4

    let options: Options
    let systemd: SystemdInstance
    let manager: SystemdManager
    let harness: KeyholdHarness
    let client: AdminClient
    /// The floor unit's properties (plan byok, its profile), built as the daemon builds them, with its network boundary.
    let floorProperties: [UnitProperty]
    /// The same unit without the boundary (the host's network, /run and /var/lib; no state directory).
    let floorPropertiesWithoutBoundary: [UnitProperty]
    /// The private systemd's pid (for `nsenter`), nil on a host run by systemd.
    let systemdPID: Int32?
    /// Prefix of /proc paths of processes in systemd's pid namespace.
    let procRoot: String

    private let lock = NSLock()
    private var tornDown = false

    /// Boots or finds systemd, starts the real daemon on it, and prepares the floor's unit.
    init(options: Options) throws {
        self.options = options
        let booted = ContinuousClock.now
        let systemd = try PrivateSystemd.hostOrPrivate(diesWithThisProcess: true, timeout: .seconds(120))
        do {
            self.systemd = systemd
            if case .privateInstance(let instance) = systemd {
                systemdPID = instance.systemdPID
                procRoot = instance.rootDirectory
                print("private systemd: pid \(instance.systemdPID), booted in \(ContinuousClock.now - booted), bus \(instance.busAddress)")
            } else {
                systemdPID = nil
                procRoot = ""
                print("systemd: the host's (PID 1)")
            }
            manager = SystemdManager(address: systemd.busAddress)
            let plan = try PlanLoader.load(path: BuildProducts.plansDirectory + "/byok.yaml")
            let profile = try SandboxProfile.load(name: plan.sandbox.profile, from: BuildProducts.profilesDirectory)
            let files = try Self.writeBoundaryFiles(systemdRoot: procRoot.isEmpty ? "" : procRoot)
            floorProperties = FloorUnit.properties(tenant: "bench-floor", plan: plan, profile: profile, agent: Self.agent, boundary: files)
            floorPropertiesWithoutBoundary = FloorUnit.properties(
                tenant: "bench-floor", plan: plan, profile: profile, agent: Self.agent, boundary: nil)
            let harness = try KeyholdHarness()
            let plans = try Self.writePlans(in: harness.root)
            // A metering proxy, so that managed sandboxes get their listener as in production.
            try harness.startDaemon(
                systemdBus: .some(systemd.busAddress), extraArguments: ["--proxy", "127.0.0.1:\(try LoopbackPort.free())", "--plans", plans],
                environment: ["KEYHOLD_TIMING": "1"])
            print("keyhold serve: pid \(harness.daemonPID ?? 0) (\(BuildProducts.keyhold)), state in \(harness.root)")
            self.harness = harness
            client = AdminClient(socketPath: harness.socketPath)
        } catch {
            try? systemd.stop()
            throw error
        }
    }

    /// The shipped plans, and `byok-warm`: `byok` with a warm pool.
    private static func writePlans(in root: String) throws -> String {
        let directory = root + "/plans"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in ["byok", "byok-brokered", "managed"] {
            try FileManager.default.copyItem(atPath: BuildProducts.plansDirectory + "/\(name).yaml", toPath: directory + "/\(name).yaml")
        }
        let byok = try String(contentsOfFile: BuildProducts.plansDirectory + "/byok.yaml", encoding: .utf8)
        let warm = byok.replacingOccurrences(of: "id: byok\n", with: "id: \(warmPlan)\n")
            .replacingOccurrences(of: "  state_max: 1G\n", with: "  state_max: 1G\n  warm_pool: \(warmPoolSize)\n")
        guard warm.contains("\n  warm_pool: \(warmPoolSize)\n"), warm.contains("id: \(warmPlan)") else {
            throw BenchError("plans/byok.yaml changed: update the bench's warm plan")
        }
        try warm.write(toFile: directory + "/\(warmPlan).yaml", atomically: true, encoding: .utf8)
        return directory
    }

    /// The floor's `/etc/hosts` and `/etc/resolv.conf`, where the daemon writes a sandbox's (systemd's tmpfs /run).
    private static func writeBoundaryFiles(systemdRoot: String) throws -> (hosts: String, resolvConf: String) {
        let directory = "/run/keyhold/sandboxes/bench-floor"
        try FileManager.default.createDirectory(atPath: systemdRoot + directory, withIntermediateDirectories: true)
        for name in ["hosts", "resolv.conf"] {
            guard FileManager.default.createFile(atPath: systemdRoot + directory + "/" + name, contents: Data("127.0.0.1 localhost\n".utf8)) else {
                throw BenchError("cannot write \(systemdRoot + directory)/\(name)")
            }
        }
        return (directory + "/hosts", directory + "/resolv.conf")
    }

    /// Every measurement in order.
    func run() async throws {
        try await createTenant("bench", plan: "byok")
        try await createTenant("bench-m", plan: "managed")
        try await createTenant("bench-b", plan: "byok-brokered")
        try await createTenant("bench-w", plan: Self.warmPlan)
        if !options.skipSecurity { try await timed("(d)") { try await self.printSecurityScores() } }
        try await timed("(a)/(b)") { try await self.measureStarts() }
        if !options.concurrent.isEmpty { try await timed("(e)") { try await self.measureConcurrentStarts() } }
        if options.density > 0 {
            try await timed("(c)") {
                let environment = try await self.measureDensity()
                let brokered = try await self.measureDensity(plan: "byok-brokered")
                if let environment, let brokered {
                    let added = (brokered - environment) / 1024
                    print(
                        String(
                            format:
                                "Brokered keys (issue 20): memory per idle sandbox, brokered minus environment delivery: %+.2f MiB; target at most 0.5 MiB -> %@",
                            added, added <= 0.5 ? "met" : "NOT met"))
                }
            }
        }
    }

    /// Runs one section and prints its wall-clock time.
    private func timed(_ section: String, _ body: () async throws -> Void) async throws {
        let begin = ContinuousClock.now
        try await body()
        let (seconds, _) = (ContinuousClock.now - begin).components
        print("  [section \(section) took \(seconds) s]")
    }

    /// Creates a tenant running `agent`, with an (unvalidated, random) Anthropic key on the BYOK plans; on the brokered
    /// plan also a generic secret (so that its sandboxes carry an authority and a secret's snapshot, as tenants' do).
    func createTenant(_ name: String, plan: String) async throws {
        _ = try await client.call(
            "POST", "/v1/tenants", body: AdminAPI.CreateTenant(name: name, plan: plan, agent: Self.agent), as: AdminAPI.Tenant.self)
        guard plan.hasPrefix("byok") else { return }
        let key = "sk-ant-bench-" + (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        _ = try await client.call(
            "PUT", "/v1/tenants/\(name)/keys/anthropic", body: AdminAPI.SetKey(key: key, baseURL: nil, validate: false, skipShapeCheck: true),
            as: AdminAPI.Key.self)
        guard plan == "byok-brokered" else { return }
        _ = try await client.call(
            "POST", "/v1/tenants/\(name)/egress", body: AdminAPI.AllowEgress(destination: "api.github.com"), as: AdminAPI.Tenant.self)
        let secret = "ghp_bench" + (0..<18).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        _ = try await client.call(
            "PUT", "/v1/tenants/\(name)/secrets/github",
            body: AdminAPI.SetSecret(value: secret, host: "api.github.com", header: nil, format: nil, env: "GITHUB_TOKEN", private: false),
            as: AdminAPI.Secret.self)
    }

    /// Starts tenant `name`'s sandbox through the admin API.
    func startSandbox(_ name: String) async throws -> AdminAPI.Sandbox {
        try await client.call("POST", "/v1/tenants/\(name)/sandbox/start", as: AdminAPI.Sandbox.self)
    }

    /// Stops tenant `name`'s sandbox through the admin API.
    func stopSandbox(_ name: String) async throws {
        _ = try await client.call("POST", "/v1/tenants/\(name)/sandbox/stop", as: [AdminAPI.Sandbox].self)
    }

    /// Stops a unit started here directly, and makes systemd forget it.
    func stopUnit(_ name: String) throws {
        try manager.stopUnit(name: name, timeout: Self.jobTimeout)
        try manager.resetFailedUnit(name: name)
    }

    /// Stops the daemon, every unit left by this run, and the private systemd. Safe to call twice, and from a signal handler.
    func tearDown() {
        lock.lock()
        defer { lock.unlock() }
        guard !tornDown else { return }
        tornDown = true
        // Every tenant goes, with its sandboxes and its agents' state directories (outside the harness's directory).
        harness.deleteTenants()
        // SIGTERM, then SIGKILL after 5 s: a graceful stop waits for the reconciler's pending restarts.
        if let pid = harness.daemonPID { kill(pid, SIGTERM) }
        if !harness.waitForDaemonExit(timeout: 5) { harness.stopDaemon(signal: SIGKILL) }
        if case .host = systemd {
            // On the host, units outlive us; a private systemd takes its units with it.
            let units = ["keyhold-bench*.service", "bench-floor-*.service"].flatMap { (try? manager.listUnits(matching: $0)) ?? [] }
            for unit in units { try? stopUnit(unit) }
        }
        do {
            try systemd.stop()
        } catch {
            FileHandle.standardError.write(Data("keyhold-bench-sandbox: stopping systemd: \(error)\n".utf8))
        }
        // The floor units' StateDirectory= (systemd keeps a DynamicUser's state after its unit stops): no tenant owns it.
        try? FileManager.default.removeItem(atPath: "/var/lib/private/keyhold-agents/bench-floor")
        // The daemon's log outlives the state directory, for a look after the run.
        try? FileManager.default.removeItem(atPath: Self.keptLog)
        try? FileManager.default.copyItem(atPath: harness.daemonLogPath, toPath: Self.keptLog)
        try? FileManager.default.removeItem(atPath: harness.root)
    }

    /// Where the daemon's log is kept after the run.
    static let keptLog = FileManager.default.temporaryDirectory.path + "/keyhold-bench-sandbox-daemon.log"

    /// The last lines of the daemon's log, for an error report.
    var daemonLogTail: String {
        harness.daemonLog.split(separator: "\n").suffix(15).joined(separator: "\n")
    }
}
