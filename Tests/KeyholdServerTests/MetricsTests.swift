import Foundation
import KeyholdCore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// `keyhold serve --metrics`: scraped over HTTP, checked by Prometheus's own `promtool`, and moving with what
/// the daemon does, under a real systemd.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct MetricsTests {
    static let promtool = "/usr/bin/promtool"

    /// The samples of one scrape, by series (`name{labels}` exactly as exposed).
    static func scrape(_ port: Int) async throws -> (text: String, samples: [String: Double]) {
        let answer = try await AdminHTTP(.tcp(port: port)).send("GET", "/metrics")
        try #require(answer.status == 200, "\(answer.text)")
        var samples: [String: Double] = [:]
        for line in answer.text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return (answer.text, samples)
    }

    /// The sum of every series of `name` whose labels include all of `labels` (`key="value"` each).
    static func total(_ samples: [String: Double], _ name: String, _ labels: [String] = []) -> Double {
        samples.filter { series, _ in
            (series == name || series.hasPrefix(name + "{")) && labels.allSatisfy { series.contains($0) }
        }.values.reduce(0, +)
    }

    /// `promtool check metrics` on a scrape: its findings (empty when clean).
    static func promtoolFindings(_ text: String) throws -> String {
        let result = try ProcessRunner.run(Self.promtool, ["check", "metrics"], input: Array(text.utf8))
        return result.status == 0 ? result.stdout + result.stderr : "exit \(result.status): \(result.stdout)\(result.stderr)"
    }

    @Test func countersMoveWithWhatTheDaemonDoesAndPromtoolFindsNothing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.promtool), "promtool is missing: install Debian's prometheus package")
        let provider = try await FakeProvider.start()
        let plans = try KeyHealthTests.plans(["checked": "on_invalid_key: keep"])
        defer { try? FileManager.default.removeItem(atPath: plans) }
        let tight = try String(contentsOfFile: plans + "/managed.yaml", encoding: .utf8)
            .replacingOccurrences(of: "id: managed", with: "id: tight").replacingOccurrences(
                of: "requests_per_minute: 60", with: "requests_per_minute: 1")
        try tight.write(toFile: plans + "/tight.yaml", atomically: true, encoding: .utf8)
        let port = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: [
            "--plans", plans, "--metrics", "127.0.0.1:\(port)", "--proxy", "127.0.0.1:\(try LoopbackPort.free())", "--log-format", "json",
            "--provider-base-url", "anthropic=\(provider.baseURL)", "--provider-base-url", "openai=\(provider.baseURL)",
        ])
        let keyhold = sandboxes.keyhold
        let empty = try await Self.scrape(port)
        let emptyFindings = try Self.promtoolFindings(empty.text)
        #expect(emptyFindings.isEmpty, "\(emptyFindings)")
        #expect(Self.total(empty.samples, "keyhold_key_injections_total") == 0)

        // A BYOK start: one injection, one timed start, one running sandbox.
        let byok = SandboxHarness.tenantName("met")
        try sandboxes.tenant(byok, plan: "checked", agent: "/bin/sh -c 'exec sleep infinity'")
        #expect(
            try keyhold.cli(["key", "set", byok, "anthropic"], input: Array((FakeProvider.Configuration.defaultAnthropicKey + "\n").utf8))
                .status == 0)
        try #require(try sandboxes.start(byok).status == 0)
        // A managed agent: two calls through the proxy, the second refused by its plan's requests_per_minute of 1.
        let platform = try keyhold.cli(
            ["platform", "set-key", "openai", "--no-validate", "--skip-shape-check"], input: Array(FakeProvider.Configuration.defaultOpenAIKey.utf8))
        try #require(platform.status == 0, "\(platform.stderr)")
        let managed = SandboxHarness.tenantName("mtr")
        let assets = try TestAssets()
        defer { assets.remove() }
        let script = assets.directory + "/calls.sh"
        try #"""
        call() { curl -s -o /dev/null -w "%{http_code} " -H "Authorization: Bearer $OPENAI_API_KEY" -H "content-type: application/json" \
            -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}' "$OPENAI_BASE_URL/chat/completions"; }
        echo "calls $(call)$(call)"
        exec sleep infinity
        """#.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        try sandboxes.tenant(managed, plan: "tight", agent: "/bin/sh \(script)")
        try #require(try sandboxes.start(managed).status == 0)
        let calls = try await sandboxes.waitForLog(managed, containing: "calls ")
        #expect(calls.hasSuffix("calls 200 429"), "\(calls)")
        #expect(try keyhold.cli(["key", "validate", byok, "anthropic"]).status == 0)
        let rotate = try keyhold.cli(
            ["key", "rotate", byok, "anthropic", "--no-validate"], input: Array((FakeProvider.Configuration.defaultAnthropicKey + "\n").utf8))
        #expect(rotate.status == 0, "\(rotate.stderr)")

        // The proxy settles asynchronously: poll the scrape until the request is counted (bounded).
        var auditBefore = SandboxHarness.jsonObjects(try keyhold.cli(["audit", "list", "--json"]).stdout).count
        var scrape = try await Self.scrape(port)
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, Self.total(scrape.samples, "keyhold_proxy_requests_total") < 1 {
            try await Task.sleep(for: .milliseconds(100))
            auditBefore = SandboxHarness.jsonObjects(try keyhold.cli(["audit", "list", "--json"]).stdout).count
            scrape = try await Self.scrape(port)
        }
        let samples = scrape.samples
        #expect(Self.total(samples, "keyhold_key_injections_total", [#"kind="byok""#]) == 2, "a start and a rotation's new unit")
        #expect(Self.total(samples, "keyhold_key_injections_total", [#"kind="managed""#]) == 1)
        #expect(Self.total(samples, "keyhold_sandbox_start_seconds_count", [#"plan="checked""#, #"outcome="ok""#]) == 2)
        #expect(Self.total(samples, "keyhold_sandboxes", [#"state="running""#]) == 2)
        #expect(Self.total(samples, "keyhold_rotations_total", [#"outcome="done""#]) == 1)
        #expect(
            Self.total(samples, "keyhold_proxy_requests_total", [#"plan="tight""#, #"provider="openai""#, #"model="gpt-4o-mini""#, #"status="200""#])
                == 1)
        #expect(Self.total(samples, "keyhold_proxy_added_seconds_count", [#"status="200""#]) == 1)
        #expect(Self.total(samples, "keyhold_proxy_tokens_total", [#"kind="input""#]) > 0)
        #expect(Self.total(samples, "keyhold_cap_refusals_total", [#"cap="requests_per_minute""#]) == 1)
        #expect(Self.total(samples, "keyhold_key_checks_total", [#"provider="anthropic""#, #"health="ok""#]) >= 2)
        #expect(Self.total(samples, "keyhold_kek_rewrap_remaining") == 0)
        #expect(
            samples["keyhold_usage_journal_lag_seconds"].map { $0 >= 0 && $0 < 5 } == true,
            "\(String(describing: samples["keyhold_usage_journal_lag_seconds"]))")
        // The log may grow between the scrape and this read (a check, an alert): the scrape saw what was there before.
        let auditAfter = SandboxHarness.jsonObjects(try keyhold.cli(["audit", "list", "--json"]).stdout).count
        let auditScraped = Self.total(samples, "keyhold_audit_records_total")
        #expect(auditScraped >= Double(auditBefore) && auditScraped <= Double(auditAfter), "\(auditBefore) <= \(auditScraped) <= \(auditAfter)")
        // No unbounded label: no tenant's name anywhere.
        #expect(!scrape.text.contains(byok) && !scrape.text.contains(managed))
        let findings = try Self.promtoolFindings(scrape.text)
        #expect(findings.isEmpty, "\(findings)")

        // --log-format json: every line of the daemon's log is one JSON object with a level and a message.
        let lines = keyhold.daemonLog.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] is String && object?["message"] is String, "not a JSON log line: \(line)")
        }
        for tenant in [byok, managed] { _ = try keyhold.cli(["sandbox", "stop", tenant]) }
        try await provider.stop()
    }
}

/// `deploy/grafana-dashboard.json` draws only what the daemon exports.
@Suite(.offCooperativePool) struct GrafanaDashboardTests {
    @Test func everyQueryNamesAnExportedFamily() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: BuildProducts.packageRoot + "/deploy/grafana-dashboard.json"))
        let dashboard = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try #require(dashboard["panels"] as? [[String: Any]])
        let expressions = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        #expect(expressions.count >= panels.count)
        let pattern = try NSRegularExpression(pattern: "keyhold_[a-z_]+")
        var drawn: Set<String> = []
        for expression in expressions {
            for match in pattern.matches(in: expression, range: NSRange(expression.startIndex..., in: expression)) {
                guard let range = Range(match.range, in: expression) else { continue }
                var name = String(expression[range])
                for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
                drawn.insert(name)
            }
        }
        let exported = Set(Telemetry.families.keys)
        #expect(drawn.subtracting(exported).isEmpty, "the dashboard queries families the daemon does not export: \(drawn.subtracting(exported))")
        #expect(exported.subtracting(drawn).isEmpty, "families no panel draws: \(exported.subtracting(drawn))")
    }
}
