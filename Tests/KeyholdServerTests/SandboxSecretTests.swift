import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Generic secrets under a real systemd: a hostile agent holds placeholders only; the egress gateway terminates its
/// TLS to the two hosts that carry secrets (stand-ins serving HTTPS under names on 127.0.0.1) with the sandbox's own
/// authority, writes each secret into its header, and refuses a placeholder on its way to the wrong host.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxSecretTests {
    /// Two HTTPS stand-ins with their own certificates (trusted by the daemon through `--egress-trust-roots`), the
    /// names that resolve to them, a webhook receiver, and a daemon with a proxy (the LLM key's broker).
    struct Rig {
        let assets: TestAssets
        let github: FakeProvider
        let slack: FakeProvider
        /// The tenant's webhook, when the test asked for one.
        let webhook: WebhookReceiver?
        /// A stand-in LLM provider serving HTTPS under a name: the tenant's brokered OpenAI key's base URL.
        let llm: FakeProvider
        let llmCanary = "sk-canary-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        /// The tenant's brokered Anthropic key (never called: its placeholder is only misused).
        let anthropicCanary = "sk-ant-canary-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let sandboxes: SandboxHarness
        let githubCanary = "ghp_canary" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let slackCanary = "xoxb-canary" + UUID().uuidString.replacingOccurrences(of: "-", with: "")

        var githubURL: String { "https://github.keyhold.test:\(github.port)" }
        var slackURL: String { "https://slack.keyhold.test:\(slack.port)" }
        var llmURL: String { "https://llm.keyhold.test:\(llm.port)" }

        /// The tenant console's base URL.
        let console: String

        init(githubKeys: [String] = [], webhook withWebhook: Bool = false) async throws {
            assets = try TestAssets()
            let githubCertificate = try SelfSignedCertificate(address: "github.keyhold.test", dnsName: true, parent: assets.directory)
            let slackCertificate = try SelfSignedCertificate(address: "slack.keyhold.test", dnsName: true, parent: assets.directory)
            let llmCertificate = try SelfSignedCertificate(address: "llm.keyhold.test", dnsName: true, parent: assets.directory)
            let roots = assets.directory + "/roots.pem"
            try [githubCertificate, slackCertificate, llmCertificate].map { try String(contentsOfFile: $0.certificatePath, encoding: .utf8) }
                .joined().write(toFile: roots, atomically: true, encoding: .utf8)
            let hosts = assets.directory + "/egress-hosts"
            try "127.0.0.1 github.keyhold.test\n127.0.0.1 slack.keyhold.test\n127.0.0.1 llm.keyhold.test\n".write(
                toFile: hosts, atomically: true, encoding: .utf8)
            var configuration = FakeProvider.Configuration()
            configuration.openAIKeys = Set(githubKeys + [githubCanary])
            github = try await FakeProvider.start(configuration: configuration, tls: try githubCertificate.serverConfiguration())
            slack = try await FakeProvider.start(tls: try slackCertificate.serverConfiguration())
            llm = try await FakeProvider.start(configuration: .init(openAIKeys: [llmCanary]), tls: try llmCertificate.serverConfiguration())
            webhook = withWebhook ? try await WebhookReceiver.start(failingFirst: 0) : nil
            let consolePort = try LoopbackPort.free()
            console = "http://127.0.0.1:\(consolePort)"
            sandboxes = try SandboxHarness(
                extraArguments: [
                    "--proxy", "127.0.0.1:\(try LoopbackPort.free())", "--egress-hosts", hosts, "--egress-trust-roots", roots,
                    "--key-use-audit-interval-ms", "300", "--console", "127.0.0.1:\(consolePort)", "--provider-ca-file", roots,
                ] + (webhook.map { ["--internal-destination", "http://127.0.0.1:\($0.port)"] } ?? []))
        }

        /// A tenant on the brokered plan with an LLM key, both hosts allowed, and both secrets.
        func tenant(_ prefix: String, agent: String) throws -> String {
            let tenant = SandboxHarness.tenantName(prefix)
            try sandboxes.tenant(tenant, plan: "byok-brokered", agent: agent)
            for host in ["github.keyhold.test:\(github.port)", "slack.keyhold.test:\(slack.port)", "llm.keyhold.test:\(llm.port)"] {
                let allowed = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant, host, "--private"])
                try #require(allowed.status == 0, "\(allowed.stderr)")
            }
            let key = try sandboxes.keyhold.cli(
                ["key", "set", tenant, "openai", "--no-validate", "--skip-shape-check", "--base-url", llmURL + "/v1"], input: Array(llmCanary.utf8))
            try #require(key.status == 0, "\(key.stderr)")
            let anthropic = try sandboxes.keyhold.cli(
                ["key", "set", tenant, "anthropic", "--no-validate", "--skip-shape-check"], input: Array(anthropicCanary.utf8))
            try #require(anthropic.status == 0, "\(anthropic.stderr)")
            let setGitHub = try sandboxes.keyhold.cli(
                ["secret", "set", tenant, "github", "--host", "github.keyhold.test:\(github.port)", "--env", "GITHUB_TOKEN", "--private"],
                input: Array(githubCanary.utf8))
            try #require(setGitHub.status == 0, "\(setGitHub.stderr)")
            let setSlack = try sandboxes.keyhold.cli(
                [
                    "secret", "set", tenant, "slack", "--host", "slack.keyhold.test:\(slack.port)", "--header", "X-Slack-Token", "--format",
                    "token={}",
                    "--env", "SLACK_TOKEN", "--private",
                ], input: Array(slackCanary.utf8))
            try #require(setSlack.status == 0, "\(setSlack.stderr)")
            return tenant
        }

        func agentCommand(_ script: String) -> String {
            "/bin/sh -c 'export TEST_GITHUB=\(githubURL) TEST_SLACK=\(slackURL) TEST_LLM=\(llmURL) TEST_PYTHON=\(TestAssets.python); exec /bin/sh \(assets.directory)/\(script)'"
        }

        func stop() async throws {
            try await github.stop()
            try await slack.stop()
            try await llm.stop()
            assets.remove()
        }
    }

    @Test func aHostileAgentUsesItsSecretsThroughTheGatewayAndCannotLeakThem() async throws {
        let rig = try await Rig(webhook: true)
        let receiver = try #require(rig.webhook)
        let tenant = try rig.tenant("sec", agent: rig.agentCommand("secret_agent.sh"))
        let webhook = try rig.sandboxes.keyhold.cli(["tenant", "set-alert-webhook", tenant, "-"], input: Array((receiver.url + "\n").utf8))
        try #require(webhook.status == 0, "\(webhook.stderr)")
        let start = try rig.sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")
        let pid = try #require(SandboxHarness.mainPID(start.stdout))
        _ = try await rig.sandboxes.waitForLog(tenant, containing: "done secrets", timeout: 90)
        let results = try rig.sandboxes.checks(tenant)

        // Nowhere in the sandbox: not its environment, its processes, its files; its bundle holds no private key.
        #expect(results["env_canaries"] == "0", "\(results)")
        #expect(results["proc_canaries"] == "0", "\(results)")
        #expect(results["file_canaries"] == "0", "\(results)")
        #expect(results["bundle_private_keys"] == "0", "\(results)")
        #expect(results["bundle_authority"] == "1", "\(results)")
        let bundle = "/etc/ssl/certs/ca-certificates.crt"
        #expect(results["bundle_variables"] == [bundle, bundle, bundle, bundle].joined(separator: " "), "\(results)")
        let placeholder = try #require(results["github_placeholder"])
        #expect(placeholder.hasPrefix("keyhold-secret-") && placeholder.count > 50, "\(placeholder)")
        #expect(results["slack_placeholder"]?.hasPrefix("keyhold-secret-") == true && results["slack_placeholder"] != placeholder)

        // Unmodified clients reach the host through the proxy and by name; the echoed header comes back as the placeholder.
        let viaProxy = try #require(results["via_proxy"])
        #expect(viaProxy.hasSuffix(" 200") && viaProxy.contains("Bearer \(placeholder)") && !viaProxy.contains(rig.githubCanary), "\(results)")
        #expect(results["by_name"] == "200", "\(results)")
        #expect(results["without_placeholder"] == "200", "the named header is replaced, whatever the agent sent: \(results)")
        #expect(results["other_host"] == "200" && results["absolute_uri"] == "400", "\(results)")
        #expect(results["requests"] == "200 True", "\(results)")
        #expect(results["node"] == "200 true", "\(results)")
        #expect(results["stream_placeholders"] == "2", "each event's echo is the placeholder: \(results)")
        // The stand-ins got the secrets, each in its own header with its format, and nothing else of the sandbox's.
        let githubRequests = rig.github.requests
        #expect(githubRequests.count >= 7)
        #expect(
            githubRequests.allSatisfy { $0.header("host") == "github.keyhold.test:\(rig.github.port)" }, "\(githubRequests.map { $0.header("host") })"
        )
        #expect(
            githubRequests.allSatisfy { $0.header("authorization") == "Bearer " + rig.githubCanary },
            "\(githubRequests.map { $0.header("authorization") })")
        let slackRequests = rig.slack.requests
        #expect(slackRequests.count == 1 && slackRequests.first?.header("x-slack-token") == "token=" + rig.slackCanary)
        #expect(results["slack"] == "401", "the stand-in refuses a header it does not know: \(results)")
        // A placeholder in a URL and a body is passed as it was sent.
        let smuggled = try #require(githubRequests.first { $0.query?.contains("token=") == true })
        #expect(smuggled.query?.contains(placeholder) == true && String(decoding: smuggled.body, as: UTF8.self).contains(placeholder))

        // A client that ignores its base URL and calls its provider by name (here the key's own HTTPS host): the gateway
        // terminates, the key broker answers with the key in the provider's header, metered as through the base URL.
        #expect(results["llm_by_name"]?.hasSuffix("\"chat.completion\"") == false, "answered by the provider: \(results)")
        #expect(results["llm_by_name"]?.hasSuffix(" 200") == true && results["llm_via_proxy"] == "200", "\(results)")
        #expect(results["llm_node"] == "200 chat.completion", "\(results)")
        let llmRequests = rig.llm.requests.filter { $0.path == "/v1/chat/completions" }
        #expect(llmRequests.count == 3 && llmRequests.allSatisfy { $0.header("authorization") == "Bearer " + rig.llmCanary }, "\(llmRequests.count)")
        try await SandboxBrokeredTests.waitUntil("three metered completions") {
            let usage = (try? rig.sandboxes.keyhold.cli(["usage", "show", tenant, "--json"]).stdout) ?? ""
            return SandboxHarness.jsonObjects(usage).first?["requests_this_month"] as? Int == 3
        }

        // Caught in the act: refused before leaving, audited with the destination, posted to the tenant's webhook.
        #expect(results["misuse_secret"]?.hasSuffix(" 403") == true && results["misuse_secret"]?.contains("secret 'github'") == true, "\(results)")
        #expect(results["misuse_llm"] == "403" && results["misuse_repeat"] == "403", "\(results)")
        #expect(!slackRequests.contains { $0.headers.contains { $0.value.contains("keyhold-") } })
        // The key broker: a secret's placeholder is not an LLM key, and a key's placeholder goes to its own provider only.
        #expect(results["misuse_broker"]?.hasSuffix(" 403") == true && results["misuse_broker"]?.contains("secret 'github'") == true, "\(results)")
        #expect(results["misuse_key_host"]?.hasSuffix(" 403") == true && results["misuse_key_host"]?.contains("anthropic key") == true, "\(results)")
        #expect(!rig.llm.requests.contains { $0.path == "/v1/messages" }, "nothing of the misused requests left")
        let slackDestination = "slack.keyhold.test:\(rig.slack.port)"
        let brokerDestination = "127.0.0.1:8787"
        let llmDestination = "llm.keyhold.test:\(rig.llm.port)"
        // Five refusals, four records: the same leak repeated within a minute is counted, not recorded again.
        try await SandboxBrokeredTests.waitUntil("four key.misuse records") {
            let listed = (try? rig.sandboxes.keyhold.cli(["audit", "list", "--action", "key.misuse", "--tenant", tenant, "--json"]).stdout) ?? ""
            return SandboxHarness.jsonObjects(listed).count == 4
        }
        let misuses = SandboxHarness.jsonObjects(
            try rig.sandboxes.keyhold.cli(["audit", "list", "--action", "key.misuse", "--tenant", tenant, "--json"]).stdout
        )
        .compactMap { $0["event"] as? [String: Any] }
        let recorded = Set(
            misuses.compactMap { misuse -> String? in
                guard let label = misuse["provider"] as? String, let destination = (misuse["details"] as? [String: String])?["destination"] else {
                    return nil
                }
                return label + " to " + destination
            })
        let expected: Set = [
            "secret:github to \(slackDestination)", "openai to \(slackDestination)", "secret:github to \(brokerDestination)",
            "anthropic to \(llmDestination)",
        ]
        #expect(misuses.count == 4 && recorded == expected, "\(misuses)")
        for (label, destination) in [
            ("secret:github", slackDestination), ("openai", slackDestination), ("secret:github", brokerDestination), ("anthropic", llmDestination),
        ] {
            let posted = try await receiver.waitForBody(timeout: .seconds(20)) { $0["placeholder_of"] == label && $0["destination"] == destination }
            #expect(posted?["event"] == "key.misuse" && posted?["tenant"] == tenant, "\(String(describing: posted))")
            #expect(posted?.values.contains { $0.contains("keyhold-secret-") || $0.contains("keyhold-") && $0.contains("sk-") } == false)
        }

        // key.inject names the secrets' placeholders by fingerprint; key.use counts their requests.
        let inject = try rig.sandboxes.keyhold.cli(["audit", "list", "--action", "key.inject", "--tenant", tenant, "--json"]).stdout
        #expect(inject.contains("secret:github") && inject.contains("placeholder_fingerprint") && !inject.contains(placeholder), "\(inject)")
        try await SandboxBrokeredTests.waitUntil("key.use for the github secret") {
            let listed = (try? rig.sandboxes.keyhold.cli(["audit", "list", "--action", "key.use", "--tenant", tenant, "--json"]).stdout) ?? ""
            let counts = SandboxHarness.jsonObjects(listed).compactMap { $0["event"] as? [String: Any] }
                .filter { ($0["provider"] as? String) == "secret:github" }
                .compactMap { ($0["details"] as? [String: String])?["count"] }.compactMap(Int.init)
            return counts.reduce(0, +) == githubRequests.count
        }

        // The tenant's console lists its secrets (never a value), its keys' uses and the placeholders caught.
        let link = try rig.sandboxes.keyhold.cli(["tenant", "console-link", tenant]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let jar = rig.assets.directory + "/cookies"
        // The link's page, then its form's POST (the page's cookie and field), as a browser signs in.
        let signInPage = try ProcessRunner.run("/usr/bin/curl", ["-s", "-c", jar, link]).stdout
        let nonce = try #require(ConsoleTests.Console.field("signin", in: signInPage), "\(signInPage)")
        _ = try ProcessRunner.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-b", jar, "-c", jar, "-d", "signin=\(nonce)", link])
        let page = try ProcessRunner.run("/usr/bin/curl", ["-s", "-b", jar, rig.console + "/"]).stdout
        #expect(page.contains("id=\"secrets\"") && page.contains("GITHUB_TOKEN") && page.contains("slack.keyhold.test:\(rig.slack.port)"))
        #expect(page.contains("secret:github v1") && page.contains("github.keyhold.test:\(rig.github.port) ("), "key uses with destinations")
        #expect(page.contains("Placeholders refused") && page.contains(slackDestination))
        #expect(!page.contains(rig.githubCanary) && !page.contains(rig.slackCanary))
        // (The agent printed its own placeholder to its log, which the page shows; Keyhold's sections never do.)
        let sections = page.components(separatedBy: "id=\"secrets\"").last?.components(separatedBy: "id=\"webhook\"").first ?? ""
        #expect(!sections.isEmpty && !sections.contains(placeholder))

        // The host side holds no secret where it could be read: the agent's environment, its unit, logs, state files.
        let environment = rig.sandboxes.environment(ofPID: pid)
        #expect(environment.range(of: Data("GITHUB_TOKEN=keyhold-secret-".utf8)) != nil)
        let unit = try #require(try rig.sandboxes.loadedUnits(tenant: tenant).first)
        for secret in [rig.githubCanary, rig.slackCanary] {
            #expect(environment.range(of: Data(secret.utf8)) == nil)
            #expect(!(try rig.sandboxes.systemctlShow(unit)).contains(secret))
            #expect(!rig.sandboxes.keyhold.daemonLog.contains(secret))
            #expect(KeyholdHarness.files(under: rig.sandboxes.keyhold.stateDirectory, containing: secret).isEmpty)
        }
        _ = try rig.sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await rig.stop()
    }

    @Test func aSecretRotatesAtTheNextRequestAndSurvivesADaemonRestart() async throws {
        let rotated = "ghp_canary" + UUID().uuidString.replacingOccurrences(of: "-", with: "")
        let rig = try await Rig(githubKeys: [rotated])
        try
            "#!/bin/sh\nwhile true; do echo \"status $(curl -s -o /dev/null -w %{http_code} -H \"Authorization: Bearer $GITHUB_TOKEN\" \"$TEST_GITHUB/v1/models\")\"; sleep 0.2; done\n"
            .write(toFile: rig.assets.directory + "/loop.sh", atomically: true, encoding: .utf8)
        let tenant = try rig.tenant("ser", agent: rig.agentCommand("loop.sh"))
        try #require(try rig.sandboxes.start(tenant).status == 0)
        _ = try await rig.sandboxes.waitForLog(tenant, containing: "status 200", timeout: 30)
        let before = try rig.sandboxes.activeUnits(tenant: tenant)
        try #require(before.count == 1)

        let set = try rig.sandboxes.keyhold.cli(
            ["secret", "set", tenant, "github", "--host", "github.keyhold.test:\(rig.github.port)", "--env", "GITHUB_TOKEN", "--private"],
            input: Array(rotated.utf8))
        try #require(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("version 2"), "\(set.stdout)")
        let rotatedAt = rig.github.requestCount
        try await SandboxBrokeredTests.waitUntil("the host receives the new version") {
            rig.github.requests.dropFirst(rotatedAt).contains { $0.header("authorization") == "Bearer " + rotated }
        }
        // The same unit and invocation, the same placeholder: no restart, no second unit.
        #expect(try rig.sandboxes.activeUnits(tenant: tenant) == before)
        let settled = rig.github.requestCount
        try await SandboxBrokeredTests.waitUntil("three more calls") { rig.github.requestCount >= settled + 3 }
        #expect(rig.github.requests.dropFirst(settled).allSatisfy { $0.header("authorization") == "Bearer " + rotated })

        // A daemon restart with the agent running: the authority it trusts is restored, its requests carry the secret.
        #expect(rig.sandboxes.keyhold.stopDaemon() == 0)
        try rig.sandboxes.restartDaemon()
        let restarted = rig.github.requestCount
        try await SandboxBrokeredTests.waitUntil("calls after the daemon's restart") { rig.github.requestCount >= restarted + 2 }
        #expect(rig.github.requests.dropFirst(restarted).allSatisfy { $0.header("authorization") == "Bearer " + rotated })
        #expect(try rig.sandboxes.activeUnits(tenant: tenant) == before)

        // Revoked: from the next request on the host is spliced like any other, unread and without the secret (here the
        // agent then meets the stand-in's own certificate, which it does not trust: no request gets through).
        let revoked = try rig.sandboxes.keyhold.cli(["secret", "revoke", tenant, "github"])
        try #require(revoked.status == 0, "\(revoked.stderr)")
        let revokedAt = rig.github.requestCount
        _ = try await rig.sandboxes.waitForLog(tenant, containing: "status 000", timeout: 20)
        #expect(rig.github.requests.dropFirst(revokedAt).allSatisfy { $0.header("authorization") == "Bearer " + rotated })
        let listed = try rig.sandboxes.keyhold.cli(["secret", "list", tenant])
        #expect(listed.stdout.contains("revoked") && !listed.stdout.contains(rotated), "\(listed.stdout)")
        _ = try rig.sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        try await rig.stop()
    }

    @Test func badSecretsAreRefusedWithTheFieldNamedAndNothingStored() async throws {
        let rig = try await Rig()
        let tenant = try rig.tenant("seb", agent: "/bin/true")
        let host = "github.keyhold.test:\(rig.github.port)"
        let cases: [(arguments: [String], field: String)] = [
            (["--host", "example.org"], "host 'example.org:443': not allowed by the egress policy"),
            (["--host", host, "--header", "X Bad"], "header 'X Bad'"),
            (["--host", host, "--format", "Bearer"], "format 'Bearer'"),
            (["--host", "127.0.0.1:\(rig.github.port)"], "host '127.0.0.1'"),
            (["--host", "169.254.169.254"], "link-local"),
            (["--host", host, "--env", "PATH"], "env 'PATH'"),
        ]
        for (arguments, field) in cases {
            let refused = try rig.sandboxes.keyhold.cli(["secret", "set", tenant, "extra"] + arguments, input: Array("value".utf8))
            #expect(refused.status != 0 && refused.stderr.contains(field), "\(arguments): \(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count <= 2, "one line: \(refused.stderr)")
        }
        // A plan that does not broker keys takes no secret.
        let environmentTenant = SandboxHarness.tenantName("sen")
        try rig.sandboxes.tenant(environmentTenant, agent: "/bin/true")
        let onEnvironmentPlan = try rig.sandboxes.keyhold.cli(
            ["secret", "set", environmentTenant, "github", "--host", host], input: Array("value".utf8))
        #expect(onEnvironmentPlan.status != 0 && onEnvironmentPlan.stderr.contains("key_delivery: brokered"), "\(onEnvironmentPlan.stderr)")
        let listed = try rig.sandboxes.keyhold.cli(["secret", "list", tenant, "--json"])
        let names = SandboxHarness.jsonObjects(listed.stdout).compactMap { $0["name"] as? String }
        #expect(names.sorted() == ["github", "slack"], "\(listed.stdout)")
        try await rig.stop()
    }
}
