import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Each daemon registers as a host of the fleet, heartbeats on the database's clock, and holds its host id alone.
@Suite(.offCooperativePool, .serialized)
struct HostRegistryTests {
    static func hosts(_ keyhold: KeyholdHarness) throws -> [[String: Any]] {
        let listed = try keyhold.cli(["host", "list", "--json"])
        try #require(listed.status == 0, "\(listed.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
    }

    /// Polls `host list` (bounded: 5 s) until `condition` holds for the host named `id`.
    static func waitForHost(_ keyhold: KeyholdHarness, _ id: String, _ condition: ([String: Any]) -> Bool) throws -> [String: Any]? {
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if let host = try hosts(keyhold).first(where: { $0["id"] as? String == id }), condition(host) { return host }
            usleep(50_000)
        }
        return nil
    }

    @Test func aDaemonRegistersItsHostAndHeartbeatsOnTheDatabasesClock() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--host-id", "h1.example", "--max-sandboxes", "7", "--lease-seconds", "2"])
        if let url = keyhold.database?.url, let password = URLComponents(string: url)?.password, let pid = keyhold.daemonPID {
            let argv = String(decoding: FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data(), as: UTF8.self)
            #expect(!argv.isEmpty && !argv.contains(password), "the database's password is never in a command line")
        }
        let host = try #require(try Self.hosts(keyhold).first)
        #expect(host["id"] as? String == "h1.example" && host["state"] as? String == "active")
        #expect(host["capacity"] as? Int == 7 && host["sandboxes"] as? Int == 0)
        let age = try #require(host["heartbeat_age_seconds"] as? Double)
        #expect(age >= 0 && age < 2, "registered just now: \(age) s")
        // It keeps beating: the age falls back below a later reading instead of growing past the lease.
        let first = try #require(try Self.waitForHost(keyhold, "h1.example") { ($0["heartbeat_age_seconds"] as? Double ?? 0) > 0.3 })
        let earlier = try #require(first["heartbeat_age_seconds"] as? Double)
        #expect(try Self.waitForHost(keyhold, "h1.example") { ($0["heartbeat_age_seconds"] as? Double ?? 9) < earlier } != nil)
        #expect(try keyhold.cli(["host", "list"]).stdout.contains("h1.example"))
        // Every audit record names the host whose daemon wrote it (inside the hashed content: the chain covers it).
        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        let records = try JSONSerialization.jsonObject(with: Data(try keyhold.cli(["audit", "list", "--json"]).stdout.utf8)) as? [[String: Any]]
        #expect(records?.last.flatMap { ($0["event"] as? [String: Any])?["details"] as? [String: String] }?["host"] == "h1.example")
        #expect(try keyhold.cli(["audit", "verify"]).status == 0)
        keyhold.stopDaemon()
    }

    @Test func aSecondDaemonWithTheSameHostIDIsRefusedAndACrashedOneIsTakenOver() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--host-id", "twin"])
        // A second daemon on the same state, elsewhere on this machine (its own socket), claiming the same id.
        var arguments = ["serve", "--state-dir", keyhold.stateDirectory, "--socket", keyhold.root + "/second.sock", "--no-systemd"]
        arguments += ["--plans", BuildProducts.plansDirectory, "--host-id", "twin"]
        let second = try ProcessRunner.run("/usr/bin/timeout", ["20", BuildProducts.keyhold] + arguments, environment: keyhold.environment)
        #expect(second.status != 0 && second.status != 124, "refused at once, not left serving")
        #expect(second.stderr.contains("another keyhold daemon runs as host 'twin'"), "\(second.stderr)")
        #expect(second.stderr.split(separator: "\n").count == 1, "one line: \(second.stderr)")

        // The first one dies without a word: a new daemon on this machine takes the host over at once.
        #expect(keyhold.stopDaemon(signal: SIGKILL) == SIGKILL)
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--host-id", "twin"])
        #expect(try Self.hosts(keyhold).map { $0["id"] as? String } == ["twin"])
        keyhold.stopDaemon()
    }

    @Test func aHostFindsTheFleetsDatabaseInASystemdCredential() throws {
        let keyhold = try KeyholdHarness(database: try SharedTestPostgres.makeDatabase(prefix: "credential"))
        let url = try #require(keyhold.database?.url)
        let password = try #require(URLComponents(string: url)?.password)
        let credentials = keyhold.root + "/credentials"
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        var environment = keyhold.environment
        environment["KEYHOLD_DATABASE"] = nil
        environment["CREDENTIALS_DIRECTORY"] = credentials
        for (written, works) in [(url.replacingOccurrences(of: password, with: "wrong-" + password), false), (url + "\n", true)] {
            try written.write(toFile: credentials + "/database-url", atomically: true, encoding: .utf8)
            let verify = try ProcessRunner.run(BuildProducts.keyhold, ["audit", "verify"] + keyhold.globalArguments, environment: environment)
            #expect((verify.status == 0) == works, "\(verify.stderr)")
            #expect(works || verify.stderr.contains("password authentication failed"), "the credential's URL was used: \(verify.stderr)")
            #expect(!verify.stderr.contains(password), "never the password")
        }
    }

    @Test func aHostKeepsItsIDAcrossRestartsWithoutTheFlag() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        #expect(HostOptions.recordedID(stateDirectory: keyhold.stateDirectory) == HostOptions.defaultID, "the first start records the hostname")
        keyhold.stopDaemon()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--host-id", "renamed"])
        keyhold.stopDaemon()
        try keyhold.startDaemon(systemdBus: nil)
        let hosts = try Self.hosts(keyhold)
        let newest = hosts.max { ($0["started_at"] as? String ?? "") < ($1["started_at"] as? String ?? "") }
        #expect(newest?["id"] as? String == "renamed" && hosts.count == 2, "a start without --host-id keeps the last id: \(hosts)")
        keyhold.stopDaemon()
    }

    @Test func aHostIDThatCannotNameAHostIsRefused() throws {
        let keyhold = try KeyholdHarness()
        for bad in ["bad/id", "-leading", "a b", String(repeating: "x", count: 64), "unit\\x2d"] {
            let result = try ProcessRunner.run(
                "/usr/bin/timeout",
                ["20", BuildProducts.keyhold, "serve", "--no-systemd", "--host-id=" + bad] + keyhold.globalArguments + [
                    "--plans", BuildProducts.plansDirectory,
                ], environment: keyhold.environment)
            #expect(result.status != 0 && result.status != 124 && result.stderr.contains("host id"), "\(bad): \(result.stderr)")
        }
    }

    @Test func forgetRefusesALiveHostAndRemovesOneThatIsDown() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--host-id", "alive", "--lease-seconds", "1"])
        // Another host of the fleet that registered once and died.
        try keyhold.openStore().writeNow { tx in
            try tx.registerHost(id: "ghost", instance: "elsewhere/1/x", maxSandboxes: 10, leaseMilliseconds: 1000) { _ in false }
        }
        let refused = try keyhold.cli(["host", "forget", "alive"])
        #expect(refused.status != 0 && refused.stderr.contains("is alive"), "\(refused.stderr)")
        #expect(try Self.waitForHost(keyhold, "ghost") { $0["state"] as? String == "down" } != nil, "no heartbeat for the lease: down")
        #expect(try Self.waitForHost(keyhold, "alive") { $0["state"] as? String == "active" } != nil, "the daemon's own host stays up")
        let forgot = try keyhold.cli(["host", "forget", "ghost"])
        #expect(forgot.status == 0, "\(forgot.stderr)")
        #expect(try Self.hosts(keyhold).map { $0["id"] as? String } == ["alive"])
        #expect(try keyhold.cli(["host", "forget", "nobody"]).stderr.contains("no host named 'nobody'"))
        #expect(try keyhold.cli(["audit", "list", "--action", "host.forget"]).stdout.contains("forgotten=ghost"))
        keyhold.stopDaemon()
    }

    @Test func aDaemonWhoseHostIsTakenOverStops() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--host-id", "usurped", "--lease-seconds", "1"])
        // Another daemon's row now (as a takeover after a missed lease would leave it).
        try keyhold.tamper("UPDATE hosts SET instance = 'elsewhere/1/x' WHERE id = 'usurped'")
        #expect(keyhold.waitForDaemonExit(timeout: 10), "its next heartbeat (within a third of the lease) finds the row gone, and it stops")
        #expect(keyhold.daemonLog.contains("no longer this daemon's"), "\(keyhold.daemonLog.suffix(400))")
    }
}
