import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Several daemons, one store, one KEK and (on this machine) one systemd: tenants placed from any host's API,
/// failed over when a host dies, fenced when a host loses the database, moved blue/green by a drain.
@Suite(.offCooperativePool, .serialized)
struct FleetTests {
    static let firstHost = HostOptions.defaultID

    /// Each tenant's sandboxes as the fleet lists them: tenant → [(host, state, invocation)].
    static func fleet(_ keyhold: KeyholdHarness) throws -> [String: [(host: String, state: String, invocation: String?)]] {
        let listed = try keyhold.cli(["sandbox", "list", "--json"])
        var result: [String: [(host: String, state: String, invocation: String?)]] = [:]
        for sandbox in SandboxHarness.jsonObjects(listed.stdout) {
            guard let tenant = sandbox["tenant"] as? String else { continue }
            result[tenant, default: []].append(
                (host: sandbox["host"] as? String ?? "", state: sandbox["state"] as? String ?? "", invocation: sandbox["invocation_id"] as? String))
        }
        return result
    }

    /// Polls `condition` every 50 ms for at most `timeout` seconds.
    static func waitUntil(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return try condition()
    }

    /// Kills `host` with its tenant's agents, and waits (bounded: 20 s) until the tenant runs on the first host.
    static func failOver(_ tenant: String, from host: FleetHost, to sandboxes: SandboxHarness) throws {
        let units = try sandboxes.activeUnits(tenant: tenant).keys
        host.kill()
        for unit in units { try sandboxes.manager.stopUnit(name: unit, timeout: .seconds(10)) }
        let moved = try waitUntil(20) {
            try fleet(sandboxes.keyhold)[tenant]?.contains { $0.host == firstHost && $0.state == "running" } == true
        }
        try #require(moved, "the tenant failed over to \(firstHost)")
    }

    static func tenants(_ sandboxes: SandboxHarness, _ prefix: String, count: Int) throws -> [String] {
        try (0..<count).map { _ in
            let tenant = SandboxHarness.tenantName(prefix)
            try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
            try sandboxes.setKey(tenant, SandboxHarness.canary())
            return tenant
        }
    }

    @Test func startsArePlacedOnTheLeastLoadedHostPinnedOrRacingButRunOnce() throws {
        let sandboxes = try SandboxHarness()
        let b = try FleetHost(sandboxes, id: "place-b")
        let c = try FleetHost(sandboxes, id: "place-c")
        let hosts: [String: (([String]) throws -> ProcessResult)] = [
            Self.firstHost: { try sandboxes.keyhold.cli($0) }, "place-b": b.cli, "place-c": c.cli,
        ]
        let tenants = try Self.tenants(sandboxes, "place", count: 5)
        defer {
            for (tenant, placed) in (try? Self.fleet(sandboxes.keyhold)) ?? [:] {
                for sandbox in placed { _ = try? hosts[sandbox.host]?(["sandbox", "stop", tenant]) }
            }
        }

        // Three starts sent to the first host's API land one on each host: the least loaded first.
        var placedOn: [String] = []
        for tenant in tenants.prefix(3) {
            let started = try sandboxes.start(tenant)
            try #require(started.status == 0, "\(started.stderr)")
            placedOn.append(try #require(SandboxHarness.jsonObjects(started.stdout).first?["host"] as? String))
            #expect(try sandboxes.activeUnits(tenant: tenant).count == 1, "its host started it")
        }
        #expect(Set(placedOn) == [Self.firstHost, "place-b", "place-c"], "\(placedOn)")
        for (tenant, host) in zip(tenants, placedOn) {
            let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant]).stdout
            #expect(
                audit.split(separator: "\n").contains { $0.contains("key.inject") && $0.contains("host=\(host)") }, "injected on \(host): \(audit)")
        }

        // Pinned from another host's API.
        let pinned = try b.cli(["sandbox", "start", tenants[3], "--host", "place-c", "--json"])
        try #require(pinned.status == 0, "\(pinned.stderr)")
        #expect(SandboxHarness.jsonObjects(pinned.stdout).first?["host"] as? String == "place-c")
        for (pin, error) in [("nosuch", "no host named 'nosuch'"), ("bad/id", "host id 'bad/id' must be")] {
            let refused = try sandboxes.keyhold.cli(["sandbox", "start", tenants[4], "--host", pin])
            #expect(refused.status != 0 && refused.stderr.contains(error), "\(pin): \(refused.stderr)")
        }

        // Two hosts asked at once to start one tenant: one runs it, the other refuses.
        let racers = try [b, c].map { host in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: BuildProducts.keyhold)
            process.arguments = ["sandbox", "start", tenants[4], "--state-dir", host.stateDirectory, "--socket", host.socket]
            process.environment = sandboxes.keyhold.environment
            let stderr = Pipe()
            process.standardOutput = FileHandle.nullDevice
            process.standardError = stderr
            try process.run()
            return (process, stderr)
        }
        let outcomes = racers.map { process, stderr in
            let text = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (status: process.terminationStatus, stderr: text)
        }
        #expect(outcomes.filter { $0.status == 0 }.count == 1, "\(outcomes.map(\.stderr))")
        #expect(
            outcomes.filter { $0.status != 0 }.allSatisfy { $0.stderr.contains("already has sandbox") || $0.stderr.contains("is being started") },
            "\(outcomes.map(\.stderr))")
        #expect(try sandboxes.activeUnits(tenant: tenants[4]).count == 1, "the tenant runs once")
    }

    @Test func aDeadHostsTenantsStartElsewhereWithAFreshAuditedInjection() throws {
        let sandboxes = try SandboxHarness(extraArguments: ["--lease-seconds", "2"])
        let b = try FleetHost(sandboxes, id: "fail-b")
        let c = try FleetHost(sandboxes, id: "fail-c")
        let tenants = try Self.tenants(sandboxes, "fail", count: 2)
        var lostUnits: [String] = []
        for tenant in tenants {
            let started = try b.cli(["sandbox", "start", tenant, "--host", "fail-b", "--json"])
            try #require(started.status == 0, "\(started.stderr)")
            lostUnits += try sandboxes.activeUnits(tenant: tenant).keys
        }

        // The host dies, and its agents with it.
        b.kill()
        for unit in lostUnits { try sandboxes.manager.stopUnit(name: unit, timeout: .seconds(10)) }
        let died = ContinuousClock.now
        let moved = try Self.waitUntil(20) {
            let fleet = try Self.fleet(sandboxes.keyhold)
            return tenants.allSatisfy { tenant in fleet[tenant]?.contains { $0.host != "fail-b" && $0.state == "running" } == true }
        }
        let took = ContinuousClock.now - died
        let fleetNow = try Self.fleet(sandboxes.keyhold)
        #expect(moved, "both tenants run on the surviving hosts: \(fleetNow) \(c.log)")
        #expect(took < .seconds(8), "failover within the 2 s lease plus a start: took \(took)")
        for tenant in tenants {
            #expect(try sandboxes.activeUnits(tenant: tenant).count == 1, "one agent, not two")
            let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant]).stdout.split(separator: "\n").map(String.init)
            let failover = try #require(audit.lastIndex { $0.contains("sandbox.failover") && $0.contains("from_host=fail-b") }, "\(audit)")
            let inject = try #require(audit.lastIndex { $0.contains("key.inject") && $0.contains("keyhold-failover") }, "\(audit)")
            #expect(failover < inject, "a fresh injection after the failover")
        }
        let hosts = try sandboxes.keyhold.cli(["host", "list"]).stdout
        #expect(hosts.split(separator: "\n").contains { $0.contains("fail-b") && $0.contains("down") }, "\(hosts)")
        #expect(try sandboxes.keyhold.cli(["audit", "verify"]).status == 0)
        for (tenant, placed) in try Self.fleet(sandboxes.keyhold) {
            for sandbox in placed where sandbox.host == "fail-c" { _ = try c.cli(["sandbox", "stop", tenant]) }
            for sandbox in placed where sandbox.host == Self.firstHost { _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant]) }
        }
    }

    @Test func aHostThatLosesTheDatabaseStopsItsAgentsAnswers503AndRecovers() throws {
        try #require(TestPostgres.isAvailable, "PostgreSQL is installed (deploy/test.sh installs it)")
        let postgres = try TestPostgres()
        defer { postgres.destroy() }
        let name = "fence_" + UUID().uuidString.prefix(8).lowercased()
        let database = (name: name, url: try postgres.makeDatabase(name))
        let sandboxes = try SandboxHarness(extraArguments: ["--lease-seconds", "2"], database: database)
        let tenant = try Self.tenants(sandboxes, "fence", count: 1)[0]
        try #require(try sandboxes.start(tenant).status == 0)
        let before = try sandboxes.activeUnits(tenant: tenant)
        try #require(before.count == 1)

        try postgres.stop()
        let lost = ContinuousClock.now
        #expect(try Self.waitUntil(5) { try sandboxes.activeUnits(tenant: tenant).isEmpty }, "the agent was stopped")
        let fencedAfter = ContinuousClock.now - lost
        #expect(fencedAfter < .seconds(2), "stopped before the 2 s lease could pass elsewhere: took \(fencedAfter)")
        let refused = try sandboxes.keyhold.cli(["sandbox", "status", tenant])
        #expect(refused.status != 0 && refused.stderr.contains("has not renewed its lease"), "503 with the reason: \(refused.stderr)")
        // Down for 30 s (fifteen leases): nothing restarts meanwhile.
        let outage = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < outage {
            #expect(try sandboxes.activeUnits(tenant: tenant).isEmpty)
            usleep(100_000)
        }

        try postgres.start()
        let back = try Self.waitUntil(20) {
            let units = try sandboxes.activeUnits(tenant: tenant)
            return units.count == 1 && Set(units.values).isDisjoint(with: before.values)
        }
        #expect(back, "the host recovered and restarted its agent: \(sandboxes.keyhold.daemonLog.suffix(2000))")
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant]).stdout.split(separator: "\n").map(String.init)
        let fenced = try #require(audit.lastIndex { $0.contains("sandbox.fenced") }, "\(audit)")
        let inject = try #require(audit.lastIndex { $0.contains("key.inject") })
        #expect(fenced < inject, "a fresh, audited injection after the fence")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)
    }

    @Test func aDrainMovesEachTenantBlueGreenWithoutDowntime() throws {
        let sandboxes = try SandboxHarness()
        let b = try FleetHost(sandboxes, id: "drain-b")
        let tenant = try Self.tenants(sandboxes, "drain", count: 1)[0]
        let started = try b.cli(["sandbox", "start", tenant, "--host", "drain-b"])
        try #require(started.status == 0, "\(started.stderr)")
        let before = try sandboxes.activeUnits(tenant: tenant)
        try #require(before.count == 1)

        // The drain runs in another process while systemd's signals record every change of the tenant's units.
        let timeline = try UnitTimeline(tenant: tenant)
        let drain = try sandboxes.keyhold.cli(["host", "drain", "drain-b", "--wait", "--timeout", "60"])
        #expect(drain.status == 0, "\(drain.output)")
        #expect(drain.output.contains("1 tenant(s) placed on other hosts"), "\(drain.output)")
        let old = try #require(before.keys.first)
        #expect(timeline.waitUntilInactive(old), "systemd signalled the old unit's stop")
        let counts = timeline.activeCounts(from: Set(before.keys))
        #expect(counts.allSatisfy { $0 > 0 }, "after every change an agent was active: \(counts)")

        let after = try sandboxes.activeUnits(tenant: tenant)
        #expect(after.count == 1 && Set(after.keys).isDisjoint(with: before.keys), "a new unit runs, the old one is gone")
        #expect(try Self.fleet(sandboxes.keyhold)[tenant]?.map(\.host) == [Self.firstHost])
        let pinned = try sandboxes.keyhold.cli(["sandbox", "restart", tenant])
        #expect(pinned.status == 0, "its new host manages it: \(pinned.stderr)")
        let other = try Self.tenants(sandboxes, "drain", count: 1)[0]
        let refused = try sandboxes.keyhold.cli(["sandbox", "start", other, "--host", "drain-b"])
        #expect(refused.status != 0 && refused.stderr.contains("host 'drain-b' is draining"), "\(refused.stderr)")
        #expect(try sandboxes.keyhold.cli(["host", "activate", "drain-b"]).status == 0)
        #expect(try sandboxes.keyhold.cli(["sandbox", "start", other, "--host", "drain-b"]).status == 0, "active again")
        let audit = try sandboxes.keyhold.cli(["audit", "list"]).stdout
        #expect(audit.contains("host.drain") && audit.contains("drained=drain-b") && audit.contains("host.activate"), "\(audit)")
        _ = try b.cli(["sandbox", "stop", other])
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
    }

    @Test func aKEKRotationWaitsUntilEveryLiveHostHoldsTheNewKEK() throws {
        let sandboxes = try SandboxHarness()
        let tenant = try Self.tenants(sandboxes, "kek", count: 1)[0]
        var b: FleetHost? = try FleetHost(sandboxes, id: "kek-b")
        let refused = try sandboxes.keyhold.cli(["kek", "rotate"])
        #expect(refused.status != 0 && refused.stderr.contains("host 'kek-b' does not hold KEK"), "\(refused.stderr)")
        // kek-b restarts with the new KEK installed (a copy of the first host's KEK files, or their shared state
        // directory on SQLite; in a fleet, its credential): a new daemon of this machine takes its id over, and the
        // interrupted rewrap resumes.
        b?.kill()
        b = try FleetHost(sandboxes, id: "kek-b")
        let rewrapped = try Self.waitUntil(20) {
            let status = try sandboxes.keyhold.cli(["kek", "status"]).stdout.split(separator: "\n")
            return status.contains { $0.contains("current") && $0.contains(" 1 ") }
                && status.contains { $0.contains("previous") && $0.contains(" 0 ") }
        }
        let status = try sandboxes.keyhold.cli(["kek", "status"]).stdout
        #expect(rewrapped, "\(status) \(b?.log ?? "")")
        let hosts = SandboxHarness.jsonObjects(try sandboxes.keyhold.cli(["host", "list", "--json"]).stdout)
        let keks = Set(hosts.compactMap { $0["kek"] as? String })
        #expect(hosts.count == 2 && keks.count == 1, "both hosts seal with the new KEK: \(hosts)")
        #expect(try sandboxes.keyhold.cli(["kek", "retire"]).status == 0)
        let started = try #require(b).cli(["sandbox", "start", tenant, "--host", "kek-b"])
        #expect(started.status == 0, "kek-b opens the rewrapped key: \(started.stderr)")
        _ = try b?.cli(["sandbox", "stop", tenant])
    }

    @Test func aTenantsCapsHoldAcrossAFailover() async throws {
        let provider = try await FakeProvider.start()
        let assets = try TestAssets()
        defer { assets.remove() }
        // A managed plan allowing three requests a minute.
        let plans = assets.directory + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: BuildProducts.plansDirectory + "/byok.yaml", toPath: plans + "/byok.yaml")
        try String(contentsOfFile: BuildProducts.plansDirectory + "/managed.yaml", encoding: .utf8)
            .replacingOccurrences(of: "requests_per_minute: 60", with: "requests_per_minute: 3")
            .write(toFile: plans + "/managed.yaml", atomically: true, encoding: .utf8)
        let body = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#
        try body.write(toFile: assets.directory + "/body.json", atomically: true, encoding: .utf8)
        chmod(assets.directory + "/body.json", 0o644)
        let metered = ["--plans", plans, "--provider-base-url", "openai=\(provider.baseURL)", "--lease-seconds", "2"]
        // On PostgreSQL whatever the suite's store: each host's proxy then has a state directory, and so a usage
        // journal, of its own (two proxies must never share one).
        let sandboxes = try SandboxHarness(
            extraArguments: metered + ["--proxy", "127.0.0.1:\(try LoopbackPort.free())"],
            database: try SharedTestPostgres.makeDatabase(prefix: "caps"))
        let b = try FleetHost(sandboxes, id: "caps-b", extraArguments: ["--proxy", "127.0.0.1:\(try LoopbackPort.free())"])
        let set = try sandboxes.keyhold.cli(
            ["platform", "set-key", "openai", "--no-validate", "--skip-shape-check"], input: Array(FakeProvider.Configuration.defaultOpenAIKey.utf8))
        try #require(set.status == 0, "\(set.stderr)")
        let tenant = SandboxHarness.tenantName("caps")
        let call =
            #"curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $OPENAI_API_KEY" -H "content-type: application/json" -d @\#(assets.directory)/body.json "$OPENAI_BASE_URL/chat/completions""#
        try sandboxes.tenant(
            tenant, plan: "managed", agent: "/bin/sh -c 'for i in 1 2 3 4; do echo \"check req$i $(\(call))\"; done; exec sleep infinity'")
        let started = try b.cli(["sandbox", "start", tenant, "--host", "caps-b"])
        try #require(started.status == 0, "\(started.stderr)")
        _ = try await sandboxes.waitForLog(tenant, containing: "check req4")
        let onB = try sandboxes.checks(tenant)
        #expect(["req1", "req2", "req3"].allSatisfy { onB[$0] == "200" } && onB["req4"] == "429", "three a minute on caps-b: \(onB)")
        // The three requests reach the database (flushed every 200 ms) before the host dies.
        #expect(
            try Self.waitUntil(10) {
                let usage = try sandboxes.keyhold.cli(["usage", "show", tenant, "--json"]).stdout
                return (SandboxHarness.jsonObjects(usage).first?["requests_this_month"] as? Int ?? 0) >= 3
            })

        try Self.failOver(tenant, from: b, to: sandboxes)
        _ = try await sandboxes.waitForLog(tenant, containing: "check req4")
        let onFirst = try sandboxes.checks(tenant)
        #expect(
            ["req1", "req2", "req3", "req4"].allSatisfy { onFirst[$0] == "429" },
            "the minute's three requests made on caps-b still count on \(Self.firstHost): \(onFirst)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await provider.stop()
    }

    @Test func aBrokeredTenantFailsOverWithNewPlaceholdersAndTheOldOnesStopWorking() async throws {
        let provider = try await FakeProvider.start()
        // A secret's host: an HTTPS stand-in under a name, trusted by both hosts' gateways.
        let assets = try TestAssets()
        defer { assets.remove() }
        let certificate = try SelfSignedCertificate(address: "github.keyhold.test", dnsName: true, parent: assets.directory)
        let hosts = assets.directory + "/egress-hosts"
        try "127.0.0.1 github.keyhold.test\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        let secretCanary = "ghp_canary" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let github = try await FakeProvider.start(configuration: .init(openAIKeys: [secretCanary]), tls: try certificate.serverConfiguration())
        let gateway = ["--egress-hosts", hosts, "--egress-trust-roots", certificate.certificatePath]
        let brokered = ["--provider-base-url", "openai=\(provider.baseURL)", "--lease-seconds", "2"]
        let sandboxes = try SandboxHarness(
            extraArguments: brokered + gateway + ["--proxy", "127.0.0.1:\(try LoopbackPort.free())"],
            database: try SharedTestPostgres.makeDatabase(prefix: "brokered"))
        let b = try FleetHost(sandboxes, id: "brk-b", extraArguments: gateway + ["--proxy", "127.0.0.1:\(try LoopbackPort.free())"])
        let tenant = SandboxHarness.tenantName("bfo")
        // Prints its placeholders, then calls through its broker and the secret's host every 200 ms.
        let call = #"curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models""#
        let secretCall =
            #"curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $GITHUB_TOKEN" https://github.keyhold.test:"#
            + "\(github.port)/v1/echo/headers"
        try sandboxes.tenant(
            tenant, plan: "byok-brokered",
            agent:
                "/bin/sh -c 'echo \"check placeholder $OPENAI_API_KEY\"; echo \"check secret_placeholder $GITHUB_TOKEN\"; "
                + "while true; do echo \"check call $(\(call))\"; echo \"check secret $(\(secretCall))\"; sleep 0.2; done'")
        let set = try sandboxes.keyhold.cli(
            ["key", "set", tenant, "openai", "--no-validate", "--skip-shape-check"], input: Array(FakeProvider.Configuration.defaultOpenAIKey.utf8))
        try #require(set.status == 0, "\(set.stderr)")
        let allowed = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant, "github.keyhold.test:\(github.port)", "--private"])
        try #require(allowed.status == 0, "\(allowed.stderr)")
        let secret = try sandboxes.keyhold.cli(
            ["secret", "set", tenant, "github", "--host", "github.keyhold.test:\(github.port)", "--env", "GITHUB_TOKEN", "--private"],
            input: Array(secretCanary.utf8))
        try #require(secret.status == 0, "\(secret.stderr)")
        let started = try b.cli(["sandbox", "start", tenant, "--host", "brk-b"])
        try #require(started.status == 0, "\(started.stderr)")
        _ = try await sandboxes.waitForLog(tenant, containing: "check call 200")
        _ = try await sandboxes.waitForLog(tenant, containing: "check secret 200")
        let first = try #require(try sandboxes.checks(tenant)["placeholder"])
        let firstSecret = try #require(try sandboxes.checks(tenant)["secret_placeholder"])

        try Self.failOver(tenant, from: b, to: sandboxes)
        // On the new host: a new placeholder, and its broker works.
        // Nothing calls from brk-b any more: every request from here on is the new host's broker's.
        let before = provider.requestCount
        let recovered = try Self.waitUntil(20) {
            try sandboxes.checks(tenant)["placeholder"] != first && provider.requestCount >= before + 2
        }
        let checks = try sandboxes.checks(tenant)
        #expect(recovered, "\(checks)")
        let second = try #require(checks["placeholder"])
        #expect(second.hasPrefix("sk-keyhold-") && second != first)
        // The lost sandbox's placeholder was revoked with it.
        let store = try sandboxes.keyhold.openStore()
        let owners = try await store.read { tx in (try tx.proxyTokenOwner(first), try tx.proxyTokenOwner(second)) }
        #expect(owners.0 == nil, "the first host's placeholder still resolves")
        #expect(owners.1?.provider == .openai)
        // The secret too: a new placeholder under the new host's authority, and the secret reaches its host again.
        let secretBefore = github.requestCount
        let secretRecovered = Self.waitUntil(20) { github.requestCount >= secretBefore + 2 }
        let secondSecret = try #require(try sandboxes.checks(tenant)["secret_placeholder"])
        #expect(secretRecovered && secondSecret != firstSecret && secondSecret.hasPrefix("keyhold-secret-"))
        #expect(try sandboxes.checks(tenant)["secret"] == "200")
        #expect(github.requests.allSatisfy { $0.header("authorization") == "Bearer " + secretCanary })
        #expect(try await store.read { tx in try tx.proxyTokenOwner(firstSecret) } == nil, "the lost sandbox's secret placeholder still resolves")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await provider.stop()
        try await github.stop()
    }
}
