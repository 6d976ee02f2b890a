import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The managed boundary under a real systemd: the agent's network is its own, and the metering proxy answers inside
/// it at a plain `http://127.0.0.1:8787`, so that unmodified clients work with the injected environment alone.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxManagedTests {
    @Test func unmodifiedSDKsCurlAndFetchReachTheProxyAndAreMetered() async throws {
        let assets = try TestAssets()
        defer { assets.remove() }
        let provider = try await FakeProvider.start()
        let proxyPort = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: [
            "--proxy", "127.0.0.1:\(proxyPort)", "--provider-base-url", "openai=\(provider.baseURL)", "--provider-base-url",
            "anthropic=\(provider.baseURL)",
        ])
        for (name, key) in [("openai", FakeProvider.Configuration.defaultOpenAIKey), ("anthropic", FakeProvider.Configuration.defaultAnthropicKey)] {
            let set = try sandboxes.keyhold.cli(["platform", "set-key", name, "--no-validate", "--skip-shape-check"], input: Array(key.utf8))
            try #require(set.status == 0, "\(set.stderr)")
        }
        let tenant = SandboxHarness.tenantName("mgd")
        let curl =
            #"echo "check curl_models $(curl -s -o /dev/null -w %{http_code} -H "Authorization: Bearer $OPENAI_API_KEY" "$OPENAI_BASE_URL/models")""#
        let host = #"echo "check host_proxy_port $(curl -s -o /dev/null -w %{http_code} --max-time 2 http://127.0.0.1:\#(proxyPort)/v1/models)""#
        try sandboxes.tenant(
            tenant, plan: "managed",
            agent:
                "/bin/sh -c '\(curl); \(host); /usr/bin/node \(assets.directory)/managed_fetch.mjs; \(TestAssets.python) \(assets.directory)/managed_agent.py; cd \(assets.directory) && exec \(TestAssets.python) frameworks_agent.py'"
        )
        let start = try sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")
        _ = try await sandboxes.waitForLog(tenant, containing: "done frameworks", timeout: 120)
        let results = try sandboxes.checks(tenant)
        #expect(results["curl_models"] == "200", "\(results)")
        #expect(results["node_fetch_plain"] == "200:chat.completion", "\(results)")
        #expect(results["node_fetch_stream"] == "200:true", "\(results)")
        for name in ["openai_plain", "openai_stream", "anthropic_plain", "anthropic_stream"] {
            #expect(results[name]?.hasPrefix("ok:") == true, "\(name): \(results)")
        }
        // The Responses API through the official SDK (18 = 11 input + 7 output tokens), streamed to its last event, and read back.
        #expect(results["openai_responses"] == "ok:completed:18", "\(results)")
        #expect(results["openai_responses_stream"] == "ok:response.completed", "\(results)")
        #expect(results["openai_responses_retrieve"] == "ok:True", "\(results)")
        // Two agent frameworks from PyPI, unmodified: OpenAI's Agents SDK (Responses) and LangChain's ChatAnthropic.
        #expect(results["agents"] == "ok:True:True:True", "a run and a streamed run: \(results)")
        #expect(results["langchain_invoke"] == "ok:True:7" && results["langchain_stream"] == "ok:True", "\(results)")
        // The host's own proxy port is the host's loopback: not reachable from the sandbox's network.
        #expect(results["host_proxy_port"] == "000", "\(results)")

        // Every call that spends tokens was metered: six completions (two through Node, four through the SDKs), three
        // responses, two agent runs and two LangChain calls.
        let deadline = Date().addingTimeInterval(20)
        var requests = 0
        while Date() < deadline {
            let usage = try sandboxes.keyhold.cli(["usage", "show", tenant, "--json"]).stdout
            requests = SandboxHarness.jsonObjects(usage).first?["requests_this_month"] as? Int ?? 0
            if requests >= 13 { break }
            usleep(100_000)
        }
        #expect(requests == 13, "metered requests")
        let responses = provider.requests.filter { $0.path == "/v1/responses" }
        #expect(
            responses.count == 5 && responses.allSatisfy { $0.header("authorization") == "Bearer " + FakeProvider.Configuration.defaultOpenAIKey })
        let status = try sandboxes.keyhold.cli(["sandbox", "status", tenant]).stdout
        #expect(status.contains("metering proxy at http://127.0.0.1:8787"), "\(status)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
    }
}
