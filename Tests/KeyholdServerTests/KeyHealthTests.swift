import Foundation
import Glibc
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Keys checked with their providers on the plan's schedule: health recorded, audited, posted to the tenant's
/// webhook, and acted on as the plan says.
@Suite(.offCooperativePool, .serialized)
struct KeyHealthTests {
    /// A plans directory: the shipped managed plan, and BYOK plans checked every second with the given extra fields.
    static func plans(_ byok: [String: String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-plans-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: BuildProducts.plansDirectory + "/managed.yaml", toPath: directory + "/managed.yaml")
        for (id, extra) in byok {
            let text = """
                id: \(id)
                name: \(id)
                price_usd_per_month: 15
                kind: byok
                providers: [anthropic, openai, openai-compatible]
                revalidate_every: 1s
                \(extra)
                sandbox:
                  profile: default
                  memory_max: 512M
                  cpu_quota_percent: 50
                  tasks_max: 64
                """
            try text.write(toFile: directory + "/\(id).yaml", atomically: true, encoding: .utf8)
        }
        return directory
    }

    /// A port that accepts connections (the kernel's backlog) and never answers: a provider that hangs.
    final class BlackHole {
        let port: Int
        private let descriptor: Int32

        init() throws {
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.descriptor = descriptor
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(descriptor, 16) == 0 else {
                close(descriptor)
                throw HarnessError("cannot listen on 127.0.0.1: errno \(errno)")
            }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            port = Int(UInt16(bigEndian: address.sin_port))
        }

        deinit { close(descriptor) }
    }

    /// The health the key list shows for a tenant's provider, polled until it is `expected` (bounded).
    static func waitForHealth(_ keyhold: KeyholdHarness, _ tenant: String, _ provider: String, _ expected: String) throws -> [String: Any]? {
        let deadline = Date().addingTimeInterval(15)
        var last: [String: Any]?
        while Date() < deadline {
            let keys =
                try JSONSerialization.jsonObject(with: Data(try keyhold.cli(["key", "list", tenant, "--json"]).stdout.utf8)) as? [[String: Any]]
            last = keys?.first { $0["provider"] as? String == provider && $0["state"] as? String == "active" }
            if last?["health"] as? String == expected { return last }
            usleep(50_000)
        }
        Issue.record("\(tenant)'s \(provider) key never became \(expected): \(String(describing: last))")
        return nil
    }

    @Test func healthFollowsTheProviderAndEachChangeIsAuditedAndPosted() async throws {
        let key = "sk-ant-api03-health-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let provider = try await FakeProvider.start(configuration: .init(anthropicKeys: [key]))
        let receiver = try await WebhookReceiver.start(failingFirst: 1)
        let hole = try BlackHole()
        let plans = try Self.plans(["checked": "on_invalid_key: keep"])
        defer { try? FileManager.default.removeItem(atPath: plans) }
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(
            systemdBus: nil,
            extraArguments: [
                "--plans", plans, "--provider-base-url", "anthropic=\(provider.baseURL)", "--key-check-timeout", "1",
                // The stand-ins on the host's own network the admin lets the daemon call for tenants.
                "--internal-destination", "http://127.0.0.1:\(receiver.port)", "--internal-destination", "http://127.0.0.1:\(hole.port)",
            ])
        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "checked"]).status == 0)
        #expect(try keyhold.cli(["tenant", "set-alert-webhook", "acme", "-"], input: Array((receiver.url + "\n").utf8)).status == 0)
        #expect(try keyhold.cli(["key", "set", "acme", "anthropic"], input: Array((key + "\n").utf8)).status == 0)
        let set = try #require(try Self.waitForHealth(keyhold, "acme", "anthropic", "ok"))
        #expect(set["validated_at"] != nil)

        // The provider revokes the key: invalid (not merely unreachable), with the provider's status.
        provider.update { $0.anthropicKeys = [] }
        let invalid = try #require(try Self.waitForHealth(keyhold, "acme", "anthropic", "invalid"))
        #expect((invalid["health_detail"] as? String)?.contains("401") == true, "\(invalid)")
        let posted = try await receiver.waitForBody(timeout: .seconds(10)) { $0["health"] == "invalid" }
        #expect(posted?["event"] == "key.health" && posted?["previous"] == "ok" && posted?["tenant"] == "acme", "\(String(describing: posted))")
        #expect(posted.map { !$0.values.contains(key) } ?? false)

        // Back, but throttled: rate-limited.
        provider.update {
            $0.anthropicKeys = [key]
            $0.failure = .init(status: 429)
        }
        _ = try Self.waitForHealth(keyhold, "acme", "anthropic", "rate-limited")
        provider.update { $0.failure = .init(status: 402) }
        _ = try Self.waitForHealth(keyhold, "acme", "anthropic", "out-of-credit")
        provider.update { $0.failure = nil }
        _ = try Self.waitForHealth(keyhold, "acme", "anthropic", "ok")

        // A provider that hangs is unreachable, never invalid; a webhook that hangs holds nothing up.
        #expect(try keyhold.cli(["tenant", "create", "initech", "--plan", "checked"]).status == 0)
        let hangingHook = "http://127.0.0.1:\(hole.port)/hook\n"
        #expect(try keyhold.cli(["tenant", "set-alert-webhook", "initech", "-"], input: Array(hangingHook.utf8)).status == 0)
        // The key's own endpoint on the host's network: the admin makes it the tenant's destination first.
        #expect(try keyhold.cli(["tenant", "allow-egress", "initech", "http://127.0.0.1:\(hole.port)", "--private"]).status == 0)
        let compatible = try keyhold.cli(
            ["key", "set", "initech", "openai-compatible", "--base-url", "http://127.0.0.1:\(hole.port)", "--no-validate"],
            input: Array("gsk-hanging\n".utf8))
        #expect(compatible.status == 0, "\(compatible.stderr)")
        let hanging = try #require(try Self.waitForHealth(keyhold, "initech", "openai-compatible", "unreachable"))
        #expect((hanging["health_detail"] as? String)?.contains("could not reach") == true, "\(hanging)")
        let asked = Date()
        let validate = try keyhold.cli(["key", "validate", "initech", "openai-compatible"])
        #expect(validate.status == 1 && validate.stdout.contains("unreachable"), "\(validate.stdout)")
        // The provider's 1 s timeout, not the webhook's: its POST waits in a task of its own.
        #expect(Date().timeIntervalSince(asked) < 5, "key validate took \(Date().timeIntervalSince(asked)) s")
        #expect(try keyhold.cli(["tenant", "show", "acme"]).status == 0)

        // Each change is one key.health record, in order; unchanged checks add none.
        let audit = try keyhold.cli(["audit", "list", "--tenant", "acme", "--action", "key.health", "--json"]).stdout
        let outcomes = SandboxHarness.jsonObjects(audit).compactMap { ($0["event"] as? [String: Any])?["outcome"] as? String }
        #expect(outcomes == ["invalid", "rate-limited", "out-of-credit", "ok"], "\(outcomes)")
        #expect(!audit.contains(key))
        #expect(!keyhold.daemonLog.contains(key))
        receiver.stop()
        try await provider.stop()
    }
}

/// What an invalid key does to a running agent, as its plan says, under a real systemd.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct KeyFallbackTests {
    static let agent = #"/bin/sh -c 'echo "base=${ANTHROPIC_BASE_URL:-direct} token=${KEYHOLD_PROXY_TOKEN:+yes}"; exec sleep infinity'"#

    /// The current agent's report lines (the logs of its running unit).
    static func reports(_ sandboxes: SandboxHarness, _ tenant: String) throws -> [String] {
        let logs = try sandboxes.keyhold.cli(["sandbox", "logs", tenant, "--lines", "200"]).stdout
        return logs.split(separator: "\n").map(String.init).filter { $0.contains("base=") }
    }

    /// Polls until the current agent's report contains `marker` (bounded).
    static func waitForReport(_ sandboxes: SandboxHarness, _ tenant: String, containing marker: String) throws -> String? {
        let deadline = Date().addingTimeInterval(30)
        var reports: [String] = []
        while Date() < deadline {
            reports = try Self.reports(sandboxes, tenant)
            if let last = reports.last, last.contains(marker) { return last }
            usleep(100_000)
        }
        Issue.record("\(tenant): no report with \(marker): \(reports)")
        return nil
    }

    @Test func anInvalidKeyMovesTheAgentToTheManagedPathUntilANewKeyIsSetOrStopsIt() async throws {
        let key = "sk-ant-api03-fallback-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let provider = try await FakeProvider.start(configuration: .init(anthropicKeys: [key, FakeProvider.Configuration.defaultAnthropicKey]))
        let plans = try KeyHealthTests.plans([
            "fallback": "on_invalid_key: fallback-managed\nfallback_plan: managed\nfallback_max_per_month: 2", "strict": "on_invalid_key: stop",
        ])
        defer { try? FileManager.default.removeItem(atPath: plans) }
        let sandboxes = try SandboxHarness(extraArguments: [
            "--plans", plans, "--proxy", "127.0.0.1:\(try LoopbackPort.free())", "--provider-base-url", "anthropic=\(provider.baseURL)",
        ])
        let keyhold = sandboxes.keyhold
        let platform = try keyhold.cli(
            ["platform", "set-key", "anthropic", "--no-validate", "--skip-shape-check"],
            input: Array(FakeProvider.Configuration.defaultAnthropicKey.utf8))
        try #require(platform.status == 0, "\(platform.stderr)")
        let tenant = SandboxHarness.tenantName("fbk")
        let strict = SandboxHarness.tenantName("stp")
        try sandboxes.tenant(tenant, plan: "fallback", agent: Self.agent)
        try sandboxes.tenant(strict, plan: "strict", agent: Self.agent)
        for name in [tenant, strict] {
            #expect(try keyhold.cli(["key", "set", name, "anthropic"], input: Array((key + "\n").utf8)).status == 0)
            try #require(try sandboxes.start(name).status == 0)
            _ = try Self.waitForReport(sandboxes, name, containing: "base=direct")
        }

        // The provider revokes the key: the fallback tenant's agent is restarted on the metering proxy, the strict one stops.
        let before = try sandboxes.activeUnits(tenant: tenant)
        provider.update { $0.anthropicKeys = [FakeProvider.Configuration.defaultAnthropicKey] }
        #expect(try Self.waitForReport(sandboxes, tenant, containing: "base=http://127.0.0.1:8787 token=yes") != nil)
        #expect(try sandboxes.activeUnits(tenant: tenant) != before, "the agent was not restarted")
        let fallback = try keyhold.cli(["audit", "list", "--tenant", tenant, "--action", "key.fallback", "--json"]).stdout
        #expect(SandboxHarness.jsonObjects(fallback).count == 1 && fallback.contains("\"managed\""), "\(fallback)")
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline, !(try sandboxes.loadedUnits(tenant: strict).isEmpty) { usleep(100_000) }
        #expect(try sandboxes.loadedUnits(tenant: strict).isEmpty, "the strict plan's agent still runs")
        let stopped = try keyhold.cli(["audit", "list", "--tenant", strict, "--action", "sandbox.stop", "--json"]).stdout
        #expect(stopped.contains("keyhold-health"), "\(stopped)")

        // The tenant sets a working key: back on its own plan, with the new key, directly.
        let fresh = "sk-ant-api03-fresh-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        provider.update { $0.anthropicKeys.insert(fresh) }
        #expect(try keyhold.cli(["key", "set", tenant, "anthropic"], input: Array((fresh + "\n").utf8)).status == 0)
        let direct = try Self.waitForReport(sandboxes, tenant, containing: "base=direct")
        #expect(direct?.hasSuffix("token=") == true, "\(String(describing: direct))")
        let back = try keyhold.cli(["audit", "list", "--tenant", tenant, "--action", "key.fallback", "--json"]).stdout
        #expect(SandboxHarness.jsonObjects(back).count == 2 && back.contains("\"byok\""), "\(back)")

        // The second fallback of the month; revoking the key it stands in for ends it and stops the agent.
        provider.update { $0.anthropicKeys.remove(fresh) }
        _ = try Self.waitForReport(sandboxes, tenant, containing: "base=http://127.0.0.1:8787 token=yes")
        let revoked = try keyhold.cli(["key", "revoke", tenant, "anthropic"])
        #expect(revoked.status == 0, "\(revoked.stderr)")
        #expect(try sandboxes.loadedUnits(tenant: tenant).isEmpty, "an agent stayed on the platform's key after its key was revoked")
        let ended = SandboxHarness.jsonObjects(try keyhold.cli(["audit", "list", "--tenant", tenant, "--action", "key.fallback", "--json"]).stdout)
        #expect(ended.compactMap { ($0["event"] as? [String: Any])?["outcome"] as? String } == ["managed", "byok", "managed", "byok"], "\(ended)")

        // A tenant that makes its key invalid on purpose once more gets no third move onto the platform's key this
        // month: the agent keeps its own (invalid) key, and the audit says so.
        let third = "sk-ant-api03-third-" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        provider.update { $0.anthropicKeys.insert(third) }
        #expect(try keyhold.cli(["key", "set", tenant, "anthropic"], input: Array((third + "\n").utf8)).status == 0)
        try #require(try sandboxes.start(tenant).status == 0)
        _ = try Self.waitForReport(sandboxes, tenant, containing: "base=direct")
        let running = try sandboxes.activeUnits(tenant: tenant)
        provider.update { $0.anthropicKeys.remove(third) }
        let refusedBy = Date().addingTimeInterval(20)
        var refusal: String?
        while Date() < refusedBy, refusal == nil {
            let records = try keyhold.cli(["audit", "list", "--tenant", tenant, "--action", "key.fallback", "--json"]).stdout
            refusal = records.contains("\"refused\"") ? records : nil
            if refusal == nil { usleep(100_000) }
        }
        #expect(refusal?.contains("fallback_max_per_month") == true, "no refused fallback: \(String(describing: refusal))")
        #expect(try sandboxes.activeUnits(tenant: tenant) == running, "the agent was moved or restarted")
        #expect(try Self.reports(sandboxes, tenant).last?.contains("base=direct") == true)
        #expect(try keyhold.cli(["sandbox", "stop", tenant]).status == 0)
        try await provider.stop()
    }
}
