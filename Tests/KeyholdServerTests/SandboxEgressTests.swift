import Foundation
import KeyholdTestTraits
import KeyholdTesting
import NIOSSL
import Testing

/// The BYOK boundary under a real systemd: each agent in a network of its own whose only way out is the daemon's
/// egress gateway, to exactly the destinations its keys, plan and tenant allow. The "internet" is a network namespace
/// this test makes (veth pair), where a fake provider serves HTTPS under a name; the agent is the official Python
/// SDKs and Node's fetch, unmodified.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxEgressTests {
    @Test func aBYOKAgentReachesOnlyWhatItIsAllowedByNameOrProxyAndNothingOfTheHost() async throws {
        let assets = try TestAssets()
        defer { assets.remove() }
        let network = try TestNetwork()
        defer { network.remove() }
        let certificate = try SelfSignedCertificate(address: "fake-provider.test", dnsName: true, parent: assets.directory)
        try network.startFakeProvider(port: 443, certificate: certificate)
        // The egress gateway's own resolution: the provider's name (private: on the test network), and a name that
        // rebinds to the host's loopback.
        let hostsFile = assets.directory + "/egress-hosts"
        try "\(network.address) fake-provider.test\n127.0.0.1 rebind.test\n".write(toFile: hostsFile, atomically: true, encoding: .utf8)

        let canary = SandboxHarness.canary().replacingOccurrences(of: "sk-ant-", with: "sk-")
        var configuration = FakeProvider.Configuration()
        configuration.openAIKeys = [canary]
        let loopbackProvider = try await FakeProvider.start(configuration: configuration)
        let hostService = try LoopbackListener()
        defer { hostService.close() }

        let sandboxes = try SandboxHarness(extraArguments: ["--egress-hosts", hostsFile])
        // A neighbour listening inside its own sandbox.
        let neighbour = SandboxHarness.tenantName("nbr")
        try sandboxes.tenant(
            neighbour,
            agent:
                "/usr/bin/python3 -c 'import http.server as h; s=h.HTTPServer((\"127.0.0.1\", 7777), h.BaseHTTPRequestHandler); print(\"listening\", flush=True); s.serve_forever()'"
        )
        try sandboxes.setKey(neighbour, SandboxHarness.canary())
        try #require(try sandboxes.start(neighbour).status == 0)
        _ = try await sandboxes.waitForLog(neighbour, containing: "listening")

        let tenant = SandboxHarness.tenantName("egr")
        let phase2 = assets.directory + "/phase2"
        let environment = [
            "TEST_CA_FILE=\(certificate.certificatePath)", "TEST_HOST_SERVICE_PORT=\(hostService.port)", "TEST_NEIGHBOUR_PORT=7777",
            "TEST_PHASE2_FILE=\(phase2)", "TEST_PRIVATE_ADDRESS=\(network.address)", "NODE_EXTRA_CA_CERTS=\(certificate.certificatePath)",
        ].map { "export \($0);" }.joined(separator: " ")
        try sandboxes.tenant(
            tenant,
            agent:
                "/bin/sh -c '\(environment) /usr/bin/node \(assets.directory)/fetch_agent.mjs; exec \(TestAssets.python) \(assets.directory)/byok_agent.py'"
        )
        // A key's base URL that is not its provider's API is refused until an admin's egress rule allows it.
        let early = try sandboxes.keyhold.cli(
            ["key", "set", tenant, "anthropic", "--no-validate", "--base-url", "https://fake-provider.test"],
            input: Array(FakeProvider.Configuration.defaultAnthropicKey.utf8))
        #expect(early.status != 0 && early.stderr.contains("allow-egress \(tenant) fake-provider.test:443"), "\(early.stderr)")
        // Both providers sit on private addresses: only an admin's explicit entry opens them. rebind.test is allowed
        // as a name, without --private, so its loopback address must still be refused.
        for (destination, isPrivate) in [
            ("http://127.0.0.1:\(loopbackProvider.port)", true), ("fake-provider.test", true), ("rebind.test", false), ("*.wild.test", false),
        ] {
            let allowed = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant, destination] + (isPrivate ? ["--private"] : []))
            try #require(allowed.status == 0, "\(allowed.stderr)")
        }
        let setCompatible = try sandboxes.keyhold.cli(
            ["key", "set", tenant, "openai-compatible", "--no-validate", "--base-url", loopbackProvider.baseURL + "/v1"], input: Array(canary.utf8))
        try #require(setCompatible.status == 0, "\(setCompatible.stderr)")
        let setAnthropic = try sandboxes.keyhold.cli(
            ["key", "set", tenant, "anthropic", "--no-validate", "--base-url", "https://fake-provider.test"],
            input: Array(FakeProvider.Configuration.defaultAnthropicKey.utf8))
        try #require(setAnthropic.status == 0, "\(setAnthropic.stderr)")
        // The admin's rule is the destination; the key's base URL adds none of its own.
        let shown = try sandboxes.keyhold.cli(["tenant", "show", tenant]).stdout
        #expect(
            shown.contains("fake-provider.test:443 (private)  from tenant") && !shown.contains("from key anthropic"),
            "\(shown)")

        let start = try sandboxes.start(tenant)
        try #require(start.status == 0, "\(start.stderr)")
        _ = try await sandboxes.waitForLog(tenant, containing: "done phase1", timeout: 90)
        let results = try sandboxes.checks(tenant)
        #expect(results["openai_plain"]?.hasPrefix("ok:") == true, "\(results)")
        #expect(results["openai_stream"]?.hasPrefix("ok:") == true, "\(results)")
        // The Responses API, straight to the provider with the tenant's key, streamed and not.
        #expect(results["openai_responses"] == "ok:completed:18", "\(results)")
        #expect(results["openai_responses_stream"] == "ok:response.completed", "\(results)")
        #expect(results["anthropic_via_proxy"]?.hasPrefix("ok:") == true, "\(results)")
        #expect(results["anthropic_stream_by_name"]?.hasPrefix("ok:") == true, "\(results)")
        #expect(results["node_fetch_plain"] == "200:message", "\(results)")
        #expect(results["node_fetch_stream"] == "200:stream-complete", "\(results)")
        // Nothing of the host, the cloud's metadata or the neighbour.
        #expect(results["host_loopback_service"]?.contains("ConnectionRefused") == true, "\(results)")
        #expect(results["neighbour_sandbox"]?.contains("ConnectionRefused") == true, "\(results)")
        #expect(results["metadata_direct"]?.hasPrefix("error:") == true, "\(results)")
        // The provider's own private address, straight: only the gateway may go there, for an allowed name.
        #expect(results["private_direct"]?.hasPrefix("error:") == true, "\(results)")
        #expect(results["metadata_proxy"] == "HTTP/1.1_403_Forbidden", "\(results)")
        #expect(results["rebinding_proxy"] == "HTTP/1.1_403_Forbidden", "\(results)")
        #expect(results["rebinding_name"]?.hasPrefix("error:") == true, "\(results)")
        #expect(results["fronting"]?.hasPrefix("error:") == true, "a tunnel's TLS must name its target: \(results)")
        #expect(results["unlisted_proxy"] == "HTTP/1.1_403_Forbidden", "\(results)")
        #expect(results["plain_http_to_https_entry"] == "HTTP/1.1_403_Forbidden", "\(results)")
        #expect(results["unlisted_name"]?.hasPrefix("error:gaierror") == true, "\(results)")
        // The sandbox's resolver answers a wildcard's names with the gateway's address.
        #expect(results["wildcard_name"] == "127.0.0.1", "\(results)")
        #expect(results["run_transient"] == "error:No_such_file_or_directory", "\(results)")
        #expect(results["agent_states"] == tenant, "only its own state directory is there: \(results)")

        // Each refusal is logged with tenant and destination (never a payload) and counted.
        let log = sandboxes.keyhold.daemonLog
        let health = try await AdminHTTP(.socket(sandboxes.keyhold.socketPath)).send("GET", "/v1/health")
        let refusedOnHost = (health.json as? [String: Any])?["egress_refused"] as? Int ?? 0
        #expect(refusedOnHost >= 5, "the daemon counts refusals: \(health.text)")
        for destination in ["169.254.169.254:80", "rebind.test:443", "unlisted.example.com:443", "unlisted.example.com (DNS lookup)"] {
            #expect(log.contains("destination=\(destination)") && log.contains("tenant=\(tenant)"), "refusal of \(destination) logged")
        }
        let status = try sandboxes.keyhold.cli(["sandbox", "status", tenant, "--json"]).stdout
        let refused = try #require(SandboxHarness.jsonObjects(status).first?["egress_refused"] as? Int)
        #expect(refused >= 4, "\(status)")
        let text = try sandboxes.keyhold.cli(["sandbox", "status", tenant]).stdout
        #expect(text.contains("network  private; egress gateway"), "\(text)")
        #expect(text.contains("rebind.test:443 from tenant"), "\(text)")

        // deny-egress applies to the running gateway at once.
        let denied = try sandboxes.keyhold.cli(["tenant", "deny-egress", tenant, "fake-provider.test"])
        #expect(denied.status == 0, "\(denied.stderr)")
        _ = FileManager.default.createFile(atPath: phase2, contents: Data())
        _ = try await sandboxes.waitForLog(tenant, containing: "done phase2")
        // The key's own entry still allows it (not private): the name resolves to a private address and is refused.
        #expect(try sandboxes.checks(tenant)["after_deny_proxy"] == "HTTP/1.1_403_Forbidden")
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant, "--json"]).stdout
        #expect(audit.contains("\"egress.allow\"") && audit.contains("\"egress.deny\""))

        #expect(!log.contains(canary), "the key is not in the daemon's log")
        #expect(loopbackProvider.requestCount >= 2)
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", tenant])
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", neighbour])
    }

    @Test func badEgressEntriesAreRefusedWithTheirReasonAndChangeNothing() throws {
        let sandboxes = try SandboxHarness()
        let tenant = SandboxHarness.tenantName("bad")
        try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
        let cases: [([String], String)] = [
            (["*"], "first label"), (["*.com"], "registrable domain"), (["example.com:70000"], "port"), (["10.1.2.3"], "--private"),
            (["127.0.0.1:5432"], "--private"), (["169.254.169.254", "--private"], "never reachable"), (["ftp://example.com"], "http://"),
        ]
        for (arguments, reason) in cases {
            let result = try sandboxes.keyhold.cli(["tenant", "allow-egress", tenant] + arguments)
            #expect(result.status != 0 && result.stderr.contains(reason), "\(arguments): \(result.stderr)")
        }
        let managed = SandboxHarness.tenantName("mgd")
        try sandboxes.tenant(managed, plan: "managed", agent: "/bin/sleep infinity")
        let onManaged = try sandboxes.keyhold.cli(["tenant", "allow-egress", managed, "example.com"])
        #expect(onManaged.status != 0 && onManaged.stderr.contains("managed plan"), "\(onManaged.stderr)")
        let missing = try sandboxes.keyhold.cli(["tenant", "deny-egress", tenant, "example.com"])
        #expect(missing.status != 0 && missing.stderr.contains("no egress entry"), "\(missing.stderr)")
        let shown = try sandboxes.keyhold.cli(["tenant", "show", tenant, "--json"]).stdout
        #expect(!shown.contains("\"source\":\"tenant\""), "nothing was added: \(shown)")
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--tenant", tenant, "--json"]).stdout
        #expect(!audit.contains("egress."))
    }
}

/// Files a sandbox must read (agent scripts, the test CA): under /opt, which sandboxes see read-only (not the test's
/// /tmp, nor /root, nor /var/lib).
struct TestAssets {
    /// The official SDKs' virtual environment, made by deploy/test.sh.
    static let python = "/opt/keyhold-test-venv/bin/python"
    let directory: String

    init() throws {
        directory = "/opt/keyhold-tests/\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        chmod("/opt/keyhold-tests", 0o755)
        let agents = BuildProducts.packageRoot + "/Tests/KeyholdServerTests/Agents"
        for name in try FileManager.default.contentsOfDirectory(atPath: agents) {
            try FileManager.default.copyItem(atPath: agents + "/" + name, toPath: directory + "/" + name)
            chmod(directory + "/" + name, 0o644)
        }
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python), "run deploy/test.sh once: it installs the SDKs into /opt/keyhold-test-venv")
    }

    func remove() { try? FileManager.default.removeItem(atPath: directory) }
}

/// A TCP listener on the host's 127.0.0.1 that no sandbox may reach (a database, an admin port).
final class LoopbackListener: @unchecked Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.descriptor = descriptor
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(descriptor, 8) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Foundation.close(descriptor) }
}
