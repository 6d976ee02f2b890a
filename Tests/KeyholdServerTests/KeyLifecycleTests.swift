import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// The CLI against the real daemon on a temporary Unix socket, with a fake provider on 127.0.0.1.
@Suite(.offCooperativePool, .serialized)
struct KeyLifecycleTests {
    static func canary() -> String { "sk-ant-canary-" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased() }

    @Test func canaryKeyIsStoredValidatedAndFoundNowhere() async throws {
        let canary = Self.canary()
        let provider = try await FakeProvider.start(configuration: .init(anthropicKeys: [canary]))
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--provider-base-url", "anthropic=\(provider.baseURL)"])

        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        let set = try keyhold.cli(["key", "set", "acme", "anthropic"], input: Array((canary + "\n").utf8))
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("fingerprint"))
        // The validation reached the provider with the key in the provider's own header.
        let validation = provider.requests.last
        #expect(validation?.path == "/v1/models")
        #expect(validation?.header("x-api-key") == canary)

        let list = try keyhold.cli(["key", "list", "acme", "--json"])
        #expect(list.stdout.contains("\"state\" : \"active\""))
        #expect(try keyhold.cli(["key", "validate", "acme", "anthropic"]).status == 0)
        #expect(try keyhold.cli(["audit", "list"]).status == 0)
        #expect(try keyhold.cli(["audit", "export"]).status == 0)
        #expect(try keyhold.cli(["tenant", "show", "acme"]).status == 0)

        // Stop the daemon so every page is flushed, then search every byte Keyhold wrote.
        #expect(keyhold.stopDaemon() == 0)
        #expect(KeyholdHarness.files(under: keyhold.stateDirectory, containing: canary).isEmpty)
        #expect(!keyhold.daemonLog.contains(canary))
        for output in keyhold.cliOutputs { #expect(!output.contains(canary)) }
        try await provider.stop()
    }

    @Test func aKeyTheProviderRejectsIsNotStored() async throws {
        let provider = try await FakeProvider.start()
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil, extraArguments: ["--provider-base-url", "anthropic=\(provider.baseURL)"])
        try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"])
        let wrong = Self.canary()
        let set = try keyhold.cli(["key", "set", "acme", "anthropic"], input: Array(wrong.utf8))
        #expect(set.status != 0)
        #expect(set.stderr.contains("rejected the key (HTTP 401)"))
        #expect(!set.output.contains(wrong))
        #expect(try keyhold.cli(["key", "list", "acme"]).stdout.contains("no keys"))
        let audit = try keyhold.cli(["audit", "list", "--action", "key.set"])
        #expect(audit.stdout.contains("refused"))
        try await provider.stop()
    }

    @Test func badInputIsRefusedClearlyAndChangesNothing() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"])
        let before = try keyhold.cli(["audit", "export"]).stdout

        let cases: [(arguments: [String], input: String?, message: String)] = [
            (["key", "set", "acme", "anthropic", "--no-validate"], "", "key is empty"),
            (["key", "set", "acme", "anthropic", "--no-validate"], "   \n", "key is empty"),
            (["key", "set", "acme", "anthropic", "--no-validate"], "sk-ant-abc\ndef", "line break"),
            (["key", "set", "acme", "anthropic", "--no-validate"], "sk-ant-abc\u{0}def", "NUL byte"),
            (["key", "set", "acme", "anthropic", "--no-validate"], "sk-proj-abcdef", "does not look like a anthropic key"),
            (["key", "set", "nobody", "anthropic", "--no-validate"], "sk-ant-abcdef", "no tenant named 'nobody'"),
            (["key", "set", "acme", "mistral", "--no-validate"], "sk-abc", "unknown provider 'mistral'"),
            (["key", "set", "acme", "openai-compatible", "--no-validate"], "gsk_abc", "needs its endpoint"),
            (["tenant", "create", "acme", "--plan", "byok"], nil, "already exists"),
            (["tenant", "create", "globex", "--plan", "platinum"], nil, "unknown plan 'platinum'"),
            (["tenant", "create", "Acme_Corp", "--plan", "byok"], nil, "must start with a lowercase letter"),
            (["tenant", "create", "acme..x", "--plan", "byok"], nil, "not a valid unit-name fragment"),
            (["tenant", "create", "a-very-long-tenant-name-that-breaks", "--plan", "byok"], nil, "too long"),
            (["tenant", "create", "bob", "--plan", "byok", "--agent", "relative/agent"], nil, "absolute path"),
            (["tenant", "set-plan", "acme", "byok"], nil, "already on plan"),
            (["key", "revoke", "acme", "anthropic"], nil, "has no live anthropic key"),
            (["plan", "show", "gold"], nil, "unknown plan 'gold'"),
        ]
        for testCase in cases {
            let result = try keyhold.cli(testCase.arguments, input: testCase.input.map { Array($0.utf8) })
            #expect(result.status != 0, "\(testCase.arguments) should fail")
            #expect(result.stderr.contains(testCase.message), "\(testCase.arguments): \(result.stderr)")
            #expect(result.stderr.hasPrefix("keyhold: error: "), "one clear line: \(result.stderr)")
            #expect(!result.stderr.contains("Fatal error"), "no stack trace")
        }
        #expect(try keyhold.cli(["tenant", "list"]).stdout.components(separatedBy: "\n").filter { !$0.isEmpty }.count == 2)
        #expect(try keyhold.cli(["audit", "export"]).stdout == before, "nothing was audited: nothing changed")
        #expect(try keyhold.cli(["key", "list", "acme"]).stdout.contains("no keys"))
    }

    @Test func aSuspendedTenantCannotStartAndResumes() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"])
        #expect(try keyhold.cli(["tenant", "suspend", "acme"]).status == 0)
        #expect(try keyhold.cli(["tenant", "show", "acme", "--json"]).stdout.contains("\"state\" : \"suspended\""))
        #expect(try keyhold.cli(["tenant", "resume", "acme"]).status == 0)
        #expect(try keyhold.cli(["tenant", "set-plan", "acme", "managed"]).status == 0)
        let delete = try keyhold.cli(["tenant", "delete", "acme"])
        #expect(delete.status != 0 && delete.stderr.contains("--yes"))
        #expect(try keyhold.cli(["tenant", "delete", "acme", "--yes"]).status == 0)
        // The deleted tenant's history is listed by its id (its name may be taken again).
        let deletion = try keyhold.cli(["audit", "list", "--action", "tenant.delete", "--json"]).stdout
        let id = try #require(deletion.range(of: #""tenant_id" : ""#).map { String(deletion[$0.upperBound...].prefix { $0 != "\"" }) }, "\(deletion)")
        let actions = try keyhold.cli(["audit", "list", "--tenant-id", id, "--json"]).stdout
        for action in ["tenant.create", "tenant.suspend", "tenant.resume", "tenant.plan", "tenant.delete"] {
            #expect(actions.contains("\"\(action)\""))
        }
    }

    @Test func withoutSystemdSandboxOperationsAnswerClearly() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        try keyhold.cli(["tenant", "create", "acme", "--plan", "managed"])
        let start = try keyhold.cli(["sandbox", "start", "acme"])
        #expect(start.status != 0)
        #expect(start.stderr.contains("sandboxes are disabled: no systemd is reachable"))
    }

    @Test func sigtermStopsTheDaemonCleanly() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        let mode = try FileManager.default.attributesOfItem(atPath: keyhold.socketPath)[.posixPermissions] as? Int
        #expect(mode == 0o660)
        #expect(keyhold.stopDaemon(signal: SIGTERM) == 0)
        #expect(!FileManager.default.fileExists(atPath: keyhold.socketPath))
        let offline = try keyhold.cli(["tenant", "list"])
        #expect(offline.status != 0 && offline.stderr.contains("is `keyhold serve` running?"))
        // audit works without the daemon.
        #expect(try keyhold.cli(["audit", "verify"]).status == 0)
    }
}

/// No two providers of one tenant write the same environment variable.
@Suite(.offCooperativePool) struct KeyEnvironmentTests {
    @Test func openAIAndOpenAICompatibleKeysAreNotBothKept() async throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        #expect(try keyhold.cli(["tenant", "allow-egress", "acme", "api.groq.com"]).status == 0, "the compatible endpoint, allowed by the admin")
        let openai = try keyhold.cli(["key", "set", "acme", "openai", "--no-validate"], input: Array("sk-proj-first\n".utf8))
        #expect(openai.status == 0, "\(openai.stderr)")
        let compatible = try keyhold.cli(
            ["key", "set", "acme", "openai-compatible", "--base-url", "https://api.groq.com/openai", "--no-validate"],
            input: Array("gsk-second\n".utf8))
        #expect(compatible.status != 0)
        #expect(compatible.stderr.contains("both set OPENAI_API_KEY and OPENAI_BASE_URL"), "\(compatible.stderr)")
        #expect(compatible.stderr.contains("keyhold key revoke acme openai"), "\(compatible.stderr)")
        #expect(!compatible.stderr.contains("gsk-second"))
        // Nothing was stored, and an anthropic key (its own variables) is still welcome.
        #expect(!(try keyhold.cli(["key", "list", "acme"]).stdout.contains("openai-compatible")))
        #expect(try keyhold.cli(["key", "set", "acme", "anthropic", "--no-validate"], input: Array("sk-ant-third\n".utf8)).status == 0)
        // Once the openai key is revoked, the compatible endpoint may take its place.
        #expect(try keyhold.cli(["key", "revoke", "acme", "openai"]).status == 0)
        let again = try keyhold.cli(
            ["key", "set", "acme", "openai-compatible", "--base-url", "https://api.groq.com/openai", "--no-validate"],
            input: Array("gsk-second\n".utf8))
        #expect(again.status == 0, "\(again.stderr)")
    }
}
