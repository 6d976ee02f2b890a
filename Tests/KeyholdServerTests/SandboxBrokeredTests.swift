import Foundation
import KeyholdSandbox
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Brokered keys under a real systemd: the agent's environment holds placeholders, its base URLs point at the broker
/// the daemon keeps inside its sandbox, and the stand-in provider receives the tenant's real key in its own header.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxBrokeredTests {
    /// A hostile agent's search for its key: environment, every process it can see, the files it can read.
    static let search = [
        #"echo "check env_canaries $(env | grep -c -e sk-[c]anary- -e sk-ant-[c]anary-)""#,
        #"echo "check proc_canaries $(cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr "\0" "\n" | grep -c -e sk-[c]anary- -e sk-ant-[c]anary-)""#,
        #"echo "check file_canaries $(grep -rIl -e sk-[c]anary- -e sk-ant-[c]anary- /etc /tmp /var/tmp /run "$HOME" 2>/dev/null | wc -l)""#,
        #"echo "check base_urls $OPENAI_BASE_URL $ANTHROPIC_BASE_URL""#, #"echo "check placeholder $OPENAI_API_KEY""#,
    ].joined(separator: "; ")

    static func canaries() -> (openAI: String, anthropic: String) {
        let suffix = UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        return ("sk-canary-" + suffix, "sk-ant-canary-" + suffix)
    }

    @Test func unmodifiedClientsWorkWithKeysTheSandboxNeverHolds() async throws {
        let assets = try TestAssets()
        defer { assets.remove() }
        let canary = Self.canaries()
        let provider = try await FakeProvider.start(configuration: .init(openAIKeys: [canary.openAI], anthropicKeys: [canary.anthropic]))
        let proxyPort = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: ["--proxy", "127.0.0.1:\(proxyPort)", "--key-use-audit-interval-ms", "2000"])
        let tenant = SandboxHarness.tenantName("brk")
        let agent =
            "/bin/sh -c '\(Self.search); /usr/bin/node \(assets.directory)/managed_fetch.mjs; \(TestAssets.python) \(assets.directory)/brokered_agent.py; cd \(assets.directory) && \(TestAssets.python) frameworks_agent.py; exec sleep infinity'"
        try sandboxes.tenant(tenant, plan: "byok-brokered", agent: agent)
        // A base URL on the host's own network is reached only once the admin allowed it (and set only then).
        let allowed = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant, "http://127.0.0.1:\(provider.port)", "--private"])
        try #require(allowed.status == 0, "\(allowed.stderr)")
        // The OpenAI key with its own base URL (as its clients take it, ending in /v1); Anthropic's with the provider's.
        for (name, key, base) in [("openai", canary.openAI, provider.baseURL + "/v1"), ("anthropic", canary.anthropic, provider.baseURL)] {
            let set = try sandboxes.keyhold.cli(
                ["key", "set", tenant, name, "--no-validate", "--skip-shape-check", "--base-url", base], input: Array(key.utf8))
            try #require(set.status == 0, "\(set.stderr)")
        }
        let start = try sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")
        let pid = try #require(SandboxHarness.mainPID(start.stdout))
        _ = try await sandboxes.waitForLog(tenant, containing: "done frameworks", timeout: 120)
        let results = try sandboxes.checks(tenant)

        // Nothing in the sandbox holds a key: not the environment, not a process, not a file.
        #expect(results["env_canaries"] == "0", "\(results)")
        #expect(results["proc_canaries"] == "0", "\(results)")
        #expect(results["file_canaries"] == "0", "\(results)")
        #expect(results["base_urls"] == "http://127.0.0.1:8787/v1 http://127.0.0.1:8787", "\(results)")
        let placeholder = try #require(results["placeholder"])
        #expect(placeholder.hasPrefix("sk-keyhold-") && placeholder.count > 40, "\(placeholder)")
        // Unmodified SDKs and fetch, streamed and not, and a path that is not metered (models).
        for name in [
            "openai_plain", "openai_stream", "openai_models", "anthropic_plain", "anthropic_stream", "openai_responses", "openai_responses_stream",
            "openai_responses_retrieve",
        ] {
            #expect(results[name]?.hasPrefix("ok:") == true, "\(name): \(results)")
        }
        #expect(results["node_fetch_plain"] == "200:chat.completion", "\(results)")
        #expect(results["node_fetch_stream"] == "200:true", "\(results)")
        // Two agent frameworks from PyPI, unmodified, with placeholders for keys.
        #expect(results["agents"] == "ok:True:True:True" && results["langchain_invoke"] == "ok:True:7", "\(results)")
        #expect(results["langchain_stream"] == "ok:True", "\(results)")
        // Echoes of the key come back as the placeholder: in a body, a header and every event of a stream.
        #expect(results["echo_plain"] == "200:True:True", "\(results)")
        #expect(results["echo_stream"] == "200:2", "\(results)")
        // A placeholder in a body or a URL reaches the provider as it was sent: the provider's header alone is replaced.
        #expect(results["placeholder_in_body_and_url"] == "200", "\(results)")
        let smuggled = try #require(provider.requests.first { $0.query?.contains("key=") == true })
        #expect(smuggled.query?.contains(placeholder) == true && smuggled.bodyString.contains(placeholder))
        #expect(smuggled.header("authorization") == "Bearer " + canary.openAI)
        // A placeholder in a header that is not its provider's, and a made-up one: the same refusal.
        #expect(results["wrong_header"] == "401:invalid API key: it is not a key of this sandbox", "\(results)")
        #expect(results["made_up"] == results["wrong_header"], "\(results)")

        // The provider got the real keys, each in its own header only.
        let received = provider.requests
        #expect(received.contains { $0.header("authorization") == "Bearer " + canary.openAI })
        #expect(received.contains { $0.header("x-api-key") == canary.anthropic })
        #expect(!received.contains { $0.header("x-api-key") == canary.openAI || $0.header("authorization")?.contains(canary.anthropic) == true })

        // The agent's process, its unit and the daemon hold no key where the host could read it either.
        // (The main process stays: the agent ends in `exec sleep`, with the environment it was given.)
        let environment = sandboxes.environment(ofPID: pid)
        #expect(environment.range(of: Data("OPENAI_API_KEY=sk-keyhold-".utf8)) != nil, "the placeholder is where the key would be")
        for key in [canary.openAI, canary.anthropic] {
            #expect(environment.range(of: Data(key.utf8)) == nil)
            let unit = try #require(try sandboxes.loadedUnits(tenant: tenant).first)
            #expect(!(try sandboxes.systemctlShow(unit)).contains(key))
            #expect(!sandboxes.keyhold.daemonLog.contains(key))
            #expect(KeyholdHarness.files(under: sandboxes.keyhold.stateDirectory, containing: key).isEmpty)
        }

        // Metered like the managed plan: six completions (four SDK calls, two fetches), attributed to the tenant.
        let deadline = Date().addingTimeInterval(20)
        var requests = 0
        while Date() < deadline {
            let usage = try sandboxes.keyhold.cli(["usage", "show", tenant, "--json"]).stdout
            requests = SandboxHarness.jsonObjects(usage).first?["requests_this_month"] as? Int ?? 0
            if requests >= 14 { break }
            usleep(100_000)
        }
        // The seventh: the chat completion with the placeholder in its body; then three responses (the Responses API),
        // and the frameworks' four calls.
        #expect(requests == 14, "metered requests")

        // The audit: key.inject says brokered with the placeholder's fingerprint (never the placeholder); key.use counts.
        let inject = try sandboxes.keyhold.cli(["audit", "list", "--action", "key.inject", "--tenant", tenant, "--json"]).stdout
        #expect(inject.contains("\"delivery\":\"brokered\"") || inject.contains("\"delivery\" : \"brokered\""), "\(inject)")
        #expect(inject.contains("placeholder_fingerprint") && !inject.contains(placeholder), "\(inject)")
        // Two SDK calls, the models list, two fetches, two echoes and the smuggling call, three responses made and one
        // read back, two agent runs; two Anthropic SDK calls and two LangChain calls: the refused ones never reached a key. Batches come every 2 s here (a minute by default), one record per sandbox and key each.
        func uses(_ provider: String) throws -> (records: Int, count: Int) {
            let listed = try sandboxes.keyhold.cli(["audit", "list", "--action", "key.use", "--tenant", tenant, "--json"]).stdout
            let events = SandboxHarness.jsonObjects(listed).compactMap { $0["event"] as? [String: Any] }.filter {
                ($0["provider"] as? String) == provider
            }
            let counts = events.compactMap { ($0["details"] as? [String: String])?["count"] }.compactMap(Int.init)
            return (events.count, counts.reduce(0, +))
        }
        try? await Self.waitUntil("key.use records counting every call") {
            (try? uses("openai").count) ?? 0 >= 14 && (try? uses("anthropic").count) ?? 0 >= 4
        }
        #expect(try uses("openai").count == 14)
        #expect(try uses("anthropic").count == 4)
        #expect(try uses("openai").records < 14, "calls are counted in batches, not audited one by one")
        // The tenant's signed receipt carries them beside key.inject, and verifies offline.
        let receipt = sandboxes.keyhold.root + "/receipt.json"
        let issued = try sandboxes.keyhold.cli(["audit", "receipt", tenant])
        try #require(issued.status == 0, "\(issued.stderr)")
        try Data(issued.stdout.utf8).write(to: URL(fileURLWithPath: receipt))
        let publicKey = sandboxes.keyhold.root + "/audit.pem"
        try Data(try sandboxes.keyhold.cli(["audit", "public-key"]).stdout.utf8).write(to: URL(fileURLWithPath: publicKey))
        let verified = try sandboxes.keyhold.cli(["audit", "verify-receipt", receipt, "--public-key", publicKey])
        #expect(verified.status == 0 && verified.stdout.contains(" key.use openai v1 "), "\(verified.stdout) \(verified.stderr)")

        // Outside its sandbox a placeholder is worthless: on the host's proxy port now, and anywhere once it stopped.
        let outside = try Self.call(port: proxyPort, placeholder: placeholder)
        #expect(outside.status == 401, "\(outside)")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", tenant]).status == 0)
        let afterStop = try Self.call(port: proxyPort, placeholder: placeholder)
        #expect(afterStop.status == 401 && afterStop.body == outside.body, "\(afterStop)")
        try await provider.stop()
    }

    @Test func rotationReachesTheRunningAgentAtItsNextRequestAndSurvivesADaemonRestart() async throws {
        let canary = Self.canaries()
        let rotated = Self.canaries().openAI
        let provider = try await FakeProvider.start(configuration: .init(openAIKeys: [canary.openAI, rotated]))
        let proxyPort = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: ["--proxy", "127.0.0.1:\(proxyPort)", "--provider-base-url", "openai=\(provider.baseURL)"])
        let tenant = SandboxHarness.tenantName("brr")
        // One call every 200 ms, its status in the log.
        let loop = #"""
            /bin/sh -c 'while true; do echo "status $(curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $OPENAI_API_KEY" -H "content-type: application/json" -d "{\"model\":\"gpt-4o-mini\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" "$OPENAI_BASE_URL/chat/completions")"; sleep 0.2; done'
            """#
        try sandboxes.tenant(tenant, plan: "byok-brokered", agent: loop)
        let set = try sandboxes.keyhold.cli(
            ["key", "set", tenant, "openai", "--no-validate", "--skip-shape-check"], input: Array(canary.openAI.utf8))
        try #require(set.status == 0, "\(set.stderr)")
        try #require(try sandboxes.start(tenant).status == 0)
        _ = try await sandboxes.waitForLog(tenant, containing: "status 200", timeout: 30)
        let before = try sandboxes.activeUnits(tenant: tenant)
        try #require(before.count == 1)

        let rotation = try sandboxes.keyhold.cli(
            ["key", "rotate", tenant, "openai", "--no-validate", "--skip-shape-check"], input: Array(rotated.utf8))
        try #require(rotation.status == 0, "\(rotation.stderr)")
        #expect(rotation.stdout.contains("use the new key from their next request, without a restart"), "\(rotation.stdout)")
        let rotatedAt = provider.requestCount
        try await Self.waitUntil("the provider receives the rotated key") {
            provider.requests.dropFirst(rotatedAt).contains { $0.header("authorization") == "Bearer " + rotated }
        }
        // The same unit, the same invocation: no restart, no second unit; and the old key is no longer sent.
        #expect(try sandboxes.activeUnits(tenant: tenant) == before)
        let status = try sandboxes.keyhold.cli(["sandbox", "status", tenant, "--json"]).stdout
        #expect(status.contains("openai:2"), "sandbox status names the version its requests now carry: \(status)")
        let settled = provider.requestCount
        try await Self.waitUntil("three more calls") { provider.requestCount >= settled + 3 }
        #expect(provider.requests.dropFirst(settled).allSatisfy { $0.header("authorization") == "Bearer " + rotated })
        // Usage is attributed to the key version that served it: both versions appear, and nothing on the platform's key.
        var byKey = ""
        try await Self.waitUntil("usage rows of both key versions") {
            byKey = (try? sandboxes.keyhold.cli(["usage", "show", tenant, "--by", "key", "--json"]).stdout) ?? ""
            return byKey.contains("openai v1") && byKey.contains("openai v2")
        }
        #expect(!byKey.contains("platform"), "\(byKey)")

        // A daemon restart with the agent running: the broker inside the sandbox comes back, the placeholder still works.
        #expect(sandboxes.keyhold.stopDaemon() == 0)
        try sandboxes.restartDaemon()
        let restarted = provider.requestCount
        try await Self.waitUntil("calls after the daemon's restart") { provider.requestCount >= restarted + 2 }
        #expect(try sandboxes.activeUnits(tenant: tenant) == before)

        // The tenant's own cap on its key: one request a minute, then 429s in OpenAI's shape.
        let caps = try sandboxes.keyhold.cli(["tenant", "set-caps", tenant, "--requests-per-minute", "1"])
        try #require(caps.status == 0, "\(caps.stderr)")
        _ = try await sandboxes.waitForLog(tenant, containing: "status 429", timeout: 20)
        #expect(try sandboxes.keyhold.cli(["tenant", "set-caps", tenant, "--clear"]).status == 0)
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await provider.stop()
    }

    @Test func aWarmUnitGetsItsPlaceholdersOnlyWhenATenantTakesIt() async throws {
        let canary = Self.canaries()
        let provider = try await FakeProvider.start(configuration: .init(openAIKeys: [canary.openAI]))
        let keyhold = try KeyholdHarness()
        let plans = keyhold.root + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        let brokered = try String(contentsOfFile: BuildProducts.plansDirectory + "/byok-brokered.yaml", encoding: .utf8)
            .replacingOccurrences(of: "  state_max: 1G\n", with: "  state_max: 1G\n  warm_pool: 1\n")
        try brokered.write(toFile: plans + "/byok-brokered.yaml", atomically: true, encoding: .utf8)
        let proxyPort = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: [
            "--plans", plans, "--proxy", "127.0.0.1:\(proxyPort)", "--provider-base-url", "openai=\(provider.baseURL)",
        ])
        let waiting = try WarmPoolTests.waitForWarmUnits(sandboxes, "one", plan: "byok-brokered") { $0.count == 1 }
        try #require(waiting.count == 1)
        // A waiting unit trusts the system's roots only: no sandbox's authority is made before a tenant takes it.
        let bundle = "/etc/ssl/certs/ca-certificates.crt"
        let authorityMark = "Keyhold: the authority"
        let waitingUnit = try #require(waiting.first)
        let waitingPID = try #require(try sandboxes.manager.unitStatus(name: waitingUnit)?.mainPID)
        let waitingBundle = sandboxes.file(bundle, asSeenByPID: Int(waitingPID))
        #expect(waitingBundle.contains("BEGIN CERTIFICATE") && !waitingBundle.contains(authorityMark))
        let tenant = SandboxHarness.tenantName("brw")
        let call = #"""
            /bin/sh -c 'echo "check placeholder $OPENAI_API_KEY"; echo "check call $(curl -sS --max-time 8 -o /dev/null -w %{http_code} -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models" 2>&1)"; exec sleep infinity'
            """#
        try sandboxes.tenant(tenant, plan: "byok-brokered", agent: call)
        let set = try sandboxes.keyhold.cli(
            ["key", "set", tenant, "openai", "--no-validate", "--skip-shape-check"], input: Array(canary.openAI.utf8))
        try #require(set.status == 0, "\(set.stderr)")
        let unit = try WarmPoolTests.startedUnit(try sandboxes.start(tenant))
        // The tenant got the waiting unit, and its placeholder and broker with it.
        #expect(waiting.contains(unit), "\(unit) is not the warm unit \(waiting)")
        _ = try await sandboxes.waitForLog(tenant, containing: "check call")
        let results = try sandboxes.checks(tenant)
        #expect(results["call"] == "200", "\(results)")
        #expect(results["placeholder"]?.hasPrefix("sk-keyhold-") == true, "\(results)")
        #expect(provider.requests.contains { $0.header("authorization") == "Bearer " + canary.openAI })
        // Taken, it trusts its own authority (written into the bundle it had mounted already).
        #expect(sandboxes.file(bundle, asSeenByPID: Int(waitingPID)).contains(authorityMark))
        // The pool's next unit waits with no tenant's placeholder.
        let next = try WarmPoolTests.waitForWarmUnits(sandboxes, "refilled", plan: "byok-brokered") { $0.subtracting([unit]).count == 1 }
        for other in next.subtracting([unit]) {
            let pid = try #require(try sandboxes.manager.unitStatus(name: other)?.mainPID)
            let environment = sandboxes.environment(ofPID: Int(pid))
            #expect(!environment.isEmpty && environment.range(of: Data("sk-keyhold-".utf8)) == nil, "a waiting unit holds no placeholder")
            #expect(!sandboxes.file(bundle, asSeenByPID: Int(pid)).contains(authorityMark), "nor an authority")
        }
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await provider.stop()
    }

    @Test func aKeysBaseURLOnTheHostsNetworkIsRefusedUntilTheAdminAllowsIt() async throws {
        let canary = Self.canaries()
        let provider = try await FakeProvider.start(configuration: .init(openAIKeys: [canary.openAI]))
        let proxyPort = try LoopbackPort.free()
        // A name that resolves to the host's loopback (as a tenant's DNS name could).
        let hosts = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-hosts-\(UUID().uuidString.prefix(8))").path
        try "127.0.0.1 llm.keyhold.test\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: hosts) }
        let sandboxes = try SandboxHarness(extraArguments: ["--proxy", "127.0.0.1:\(proxyPort)", "--egress-hosts", hosts])
        let tenant = SandboxHarness.tenantName("brs")
        let loop =
            #"/bin/sh -c 'while true; do echo "status $(curl -s -w " %{http_code}" -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models" | tail -c 300)"; sleep 0.3; done'"#
        try sandboxes.tenant(tenant, plan: "byok-brokered", agent: loop)
        func setKey() throws -> ProcessResult {
            try sandboxes.keyhold.cli(
                ["key", "set", tenant, "openai", "--no-validate", "--skip-shape-check", "--base-url", "http://llm.keyhold.test:\(provider.port)/v1"],
                input: Array(canary.openAI.utf8))
        }
        // Not the provider's API: refused until the admin makes it a destination.
        let early = try setKey()
        #expect(early.status != 0 && early.stderr.contains("allow-egress \(tenant) http://llm.keyhold.test:\(provider.port)"), "\(early.stderr)")
        let named = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant, "http://llm.keyhold.test:\(provider.port)"])
        try #require(named.status == 0, "\(named.stderr)")
        let set = try setKey()
        try #require(set.status == 0, "\(set.stderr)")
        try #require(try sandboxes.start(tenant).status == 0)
        // The name resolves to the host's loopback, which the rule (a name, without --private) does not open: the
        // daemon does not go there from the host's network.
        let refused = try await sandboxes.waitForLog(tenant, containing: " 403")
        // (JSON writes a slash as \/.)
        #expect(refused.contains(#"allow-egress \#(tenant) http:\/\/llm.keyhold.test:\#(provider.port) --private"#), "\(refused)")
        #expect(provider.requestCount == 0)
        // Allowed by the admin: the next check passes, and the provider gets the key.
        let allowed = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant, "http://llm.keyhold.test:\(provider.port)", "--private"])
        try #require(allowed.status == 0, "\(allowed.stderr)")
        _ = try await sandboxes.waitForLog(tenant, containing: " 200")
        #expect(provider.requests.contains { $0.header("authorization") == "Bearer " + canary.openAI })
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await provider.stop()
    }

    /// Polls (bounded: 20 s) until `condition` holds, sleeping without holding a thread (the in-process fake servers
    /// of the tests running beside it answer on the same pool).
    static func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(20)
        while !condition() {
            guard Date() < deadline else { throw BrokeredTestTimeout(what: what) }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// A models call to the host's proxy port with a placeholder.
    static func call(port: Int, placeholder: String) throws -> (status: Int, body: String) {
        let result = try ProcessRunner.run(
            "/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "-H", "@-", "http://127.0.0.1:\(port)/v1/models"],
            input: Array("Authorization: Bearer \(placeholder)\n".utf8))
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }
}

struct BrokeredTestTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}
