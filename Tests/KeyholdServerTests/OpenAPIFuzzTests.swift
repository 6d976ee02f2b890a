import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// schemathesis (from PyPI, in the test set-up's virtual environment) against the real daemon over TCP with an admin
/// token, under a real systemd and with a fake provider on loopback: every phase and every check of
/// `deploy/schemathesis.toml`, zero failures. Its JUnit report is kept under `.build/test-artefacts/schemathesis/`.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct OpenAPIFuzzTests {
    static let schemathesis = "/opt/keyhold-test-venv/bin/schemathesis"

    @Test func schemathesisFindsNoFailure() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.schemathesis),
            "schemathesis is missing: deploy/test.sh installs it into /opt/keyhold-test-venv")
        let provider = try await FakeProvider.start()
        let port = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: [
            "--tcp", "127.0.0.1:\(port)", "--console", "127.0.0.1:\(try LoopbackPort.free())", "--provider-base-url", "anthropic=\(provider.baseURL)",
            "--provider-base-url",
            "openai=\(provider.baseURL)", "--provider-base-url", "google=\(provider.baseURL)",
        ])
        let keyhold = sandboxes.keyhold
        let created = try keyhold.cli(["token", "create", "schemathesis"])
        try #require(created.status == 0, "\(created.stderr)")
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)

        let reports = BuildProducts.packageRoot + "/.build/test-artefacts/schemathesis"
        try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true)
        let run = try ProcessRunner.run(
            Self.schemathesis,
            [
                "--config-file", BuildProducts.packageRoot + "/deploy/schemathesis.toml", "run",
                BuildProducts.packageRoot + "/deploy/openapi.yaml", "--url", "http://127.0.0.1:\(port)", "--header",
                "Authorization: Bearer \(token)", "--max-examples", "25", "--seed", "20261127", "--request-timeout", "30",
                "--report", "junit", "--report-dir", reports, "--no-color",
            ],
            environment: ["PATH": "/usr/bin:/bin", "HOME": keyhold.root, "SCHEMATHESIS_HOOKS": ""])
        let summary = run.stdout.split(separator: "\n").suffix(30).joined(separator: "\n")
        #expect(run.status == 0, "schemathesis found failures:\n\(run.stdout.suffix(12_000))\n\(run.stderr.suffix(2_000))")
        #expect(summary.contains("API Operations"), "\(summary)")
        #expect(!keyhold.daemonLog.contains("Fatal error"), "the daemon crashed")
        #expect(!run.stdout.contains(token))

        // What the fuzzer started, stopped: by the API, tenant by tenant.
        let tenants = SandboxHarness.jsonObjects(try keyhold.cli(["tenant", "list", "--json"]).stdout).compactMap { $0["name"] as? String }
        for tenant in tenants where !(try sandboxes.loadedUnits(tenant: tenant)).isEmpty {
            _ = try keyhold.cli(["sandbox", "stop", tenant])
        }
        try await provider.stop()
    }
}
