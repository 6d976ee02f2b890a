import BenchmarkSupport
import Foundation
import Glibc
import KeyholdSandbox
import KeyholdStore
import KeyholdTesting
import NIOSSL

/// The parts of keyhold-bench-boundary: a private (or the host's) systemd, the real daemon with its proxy and egress
/// gateway, a TLS fake provider and a plain one on loopback, and one BYOK, one managed and one brokered tenant running
/// client.py.
final class BoundarySetup: @unchecked Sendable {
    static let providerName = "bench-provider.test"
    let systemd: SystemdInstance
    let keyhold: KeyholdHarness
    let assets: String
    let tlsProvider: FakeProvider
    let plainProvider: FakeProvider
    let proxyPort: Int
    let hostToken: String
    private let lock = NSLock()
    private var tornDown = false

    init(requests: Int) async throws {
        systemd = try PrivateSystemd.hostOrPrivate(diesWithThisProcess: true, timeout: .seconds(120))
        assets = "/opt/keyhold-bench-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: assets, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try FileManager.default.copyItem(atPath: BuildProducts.packageRoot + "/Benchmarks/Boundary/client.py", toPath: assets + "/client.py")
        chmod(assets + "/client.py", 0o644)
        let made = try ProcessRunner.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=\(Self.providerName)",
                "-addext", "subjectAltName=DNS:\(Self.providerName),IP:127.0.0.1", "-keyout", assets + "/key.pem", "-out", assets + "/cert.pem",
            ])
        guard made.status == 0 else { throw BenchError("openssl: \(made.stderr)") }
        chmod(assets + "/cert.pem", 0o644)
        tlsProvider = try await FakeProvider.start(
            tls: .makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(assets + "/cert.pem").map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: assets + "/key.pem", format: .pem))))
        plainProvider = try await FakeProvider.start()
        keyhold = try KeyholdHarness()
        let plans = keyhold.root + "/plans"
        try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
        for name in ["byok", "byok-brokered", "managed"] {
            let text = try String(contentsOfFile: BuildProducts.plansDirectory + "/\(name).yaml", encoding: .utf8)
                .replacingOccurrences(of: "cpu_quota_percent: 50", with: "cpu_quota_percent: 200")
                .replacingOccurrences(of: "requests_per_minute: 60", with: "requests_per_minute: 10000000")
                .replacingOccurrences(of: "tokens_per_day: 2000000", with: "tokens_per_day: 2000000000")
                .replacingOccurrences(of: "tokens_per_month: 20000000", with: "tokens_per_month: 20000000000")
                .replacingOccurrences(of: "usd_per_month: 25", with: "usd_per_month: 1000000")
            try text.write(toFile: plans + "/\(name).yaml", atomically: true, encoding: .utf8)
        }
        try "127.0.0.1 \(Self.providerName)\n".write(toFile: keyhold.root + "/egress-hosts", atomically: true, encoding: .utf8)
        proxyPort = try LoopbackPort.free()
        var arguments = [
            "--plans", plans, "--proxy", "127.0.0.1:\(proxyPort)", "--provider-base-url", "openai=\(plainProvider.baseURL)",
            "--egress-hosts", keyhold.root + "/egress-hosts", "--egress-trust-roots", assets + "/cert.pem",
        ]
        if let journal = systemd.journalDirectory { arguments += ["--journal-directory", journal] }
        try keyhold.startDaemon(systemdBus: .some(systemd.busAddress), extraArguments: arguments)
        let key = FakeProvider.Configuration.defaultOpenAIKey
        try Self.check(keyhold.cli(["platform", "set-key", "openai", "--no-validate", "--skip-shape-check"], input: Array(key.utf8)))

        let environment = "export BENCH_CA_FILE=\(assets)/cert.pem BENCH_PROVIDER_HOST=\(Self.providerName) BENCH_PROVIDER_PORT=\(tlsProvider.port);"
        let client = "/usr/bin/python3 \(assets)/client.py"
        try Self.check(
            keyhold.cli([
                "tenant", "create", "bench-byok", "--plan", "byok", "--agent",
                "/bin/sh -c '\(environment) export BENCH_KEY=\"$OPENAI_API_KEY\"; \(client) sni \(requests); \(client) connect \(requests); \(client) handshake-sni \(requests); echo bench-done; exec sleep infinity'",
            ]))
        // The admin's rule first: a key's base URL elsewhere than its provider's API is refused until one allows it.
        try Self.check(keyhold.cli(["tenant", "allow-egress", "bench-byok", "\(Self.providerName):\(tlsProvider.port)", "--private"]))
        try Self.check(
            keyhold.cli(
                [
                    "key", "set", "bench-byok", "openai-compatible", "--no-validate", "--base-url",
                    "https://\(Self.providerName):\(tlsProvider.port)/v1",
                ],
                input: Array(key.utf8)))
        try Self.check(
            keyhold.cli([
                "tenant", "create", "bench-mgd", "--plan", "managed", "--agent",
                "/bin/sh -c '\(client) managed \(requests); echo bench-done; exec sleep infinity'",
            ]))
        try Self.check(
            keyhold.cli([
                "tenant", "create", "bench-brk", "--plan", "byok-brokered", "--agent",
                "/bin/sh -c '\(environment) \(client) brokered \(requests); \(client) secret \(requests); \(client) handshake-secret \(requests); echo bench-done; exec sleep infinity'",
            ]))
        // Its key goes to the plain provider (the daemon's --provider-base-url), as the managed proxy's does.
        try Self.check(keyhold.cli(["key", "set", "bench-brk", "openai", "--no-validate", "--skip-shape-check"], input: Array(key.utf8)))
        // A generic secret bound to the TLS provider: the same requests as the BYOK tenant's by name, terminated.
        try Self.check(keyhold.cli(["tenant", "allow-egress", "bench-brk", "\(Self.providerName):\(tlsProvider.port)", "--private"]))
        try Self.check(
            keyhold.cli(
                ["secret", "set", "bench-brk", "bench", "--host", "\(Self.providerName):\(tlsProvider.port)", "--env", "BENCH_SECRET", "--private"],
                input: Array(key.utf8)))
        // The host's client needs a proxy token of its own, made as a sandbox start makes one, for a tenant of its own
        // on the same plan (the managed tenant's sandbox restarts, which revokes its tokens).
        try Self.check(keyhold.cli(["tenant", "create", "bench-host", "--plan", "managed"]))
        let store = try Store.open(path: keyhold.stateDirectory + "/keyhold.db")
        hostToken = try await store.write { tx in
            let tenant = try tx.tenant(named: "bench-host")
            let sandbox = try tx.insertSandbox(tenantID: tenant.id, tenantName: tenant.name)
            return try tx.createProxyToken(tenantID: tenant.id, sandboxID: sandbox.id)
        }
        print("private systemd bus \(systemd.busAddress ?? "host"); keyhold serve pid \(keyhold.daemonPID ?? 0); proxy 127.0.0.1:\(proxyPort)")
    }

    /// Starts both sandboxes afresh and collects their agents' results.
    func sandboxRound() throws -> [(String, Double, Double)] {
        var results: [(String, Double, Double)] = []
        for tenant in ["bench-byok", "bench-mgd", "bench-brk"] {
            _ = try? keyhold.cli(["sandbox", "stop", tenant])
            try Self.check(keyhold.cli(["sandbox", "start", tenant]))
            let deadline = Date().addingTimeInterval(600)
            var lines: [String] = []
            while Date() < deadline {
                lines = try keyhold.cli(["sandbox", "logs", tenant, "--lines", "50"]).stdout.split(separator: "\n").map(String.init)
                if lines.contains(where: { $0.hasSuffix("bench-done") }) { break }
                usleep(200_000)
            }
            let parsed = lines.compactMap(Self.result)
            guard !parsed.isEmpty, lines.contains(where: { $0.hasSuffix("bench-done") }) else {
                throw BenchError("\(tenant) did not finish: \(lines.suffix(10).joined(separator: "\n"))")
            }
            results += parsed
        }
        return results
    }

    /// The same client on the host: straight to the TLS provider, and to the proxy's loopback port.
    func hostRound(requests: Int) throws -> [(String, Double, Double)] {
        var results: [(String, Double, Double)] = []
        for (mode, environment) in [
            (
                "direct",
                [
                    "BENCH_CA_FILE": assets + "/cert.pem", "BENCH_PROVIDER_HOST": "127.0.0.1", "BENCH_PROVIDER_PORT": String(tlsProvider.port),
                    "BENCH_KEY": FakeProvider.Configuration.defaultOpenAIKey,
                ]
            ),
            ("managed", ["OPENAI_BASE_URL": "http://127.0.0.1:\(proxyPort)/v1", "OPENAI_API_KEY": hostToken]),
        ] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = [assets + "/client.py", mode, String(requests)]
            process.environment = environment
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            guard let parsed = text.split(separator: "\n").compactMap({ Self.result(String($0)) }).first else {
                throw BenchError("the host's client (\(mode)) failed: \(text)")
            }
            results.append((mode == "managed" ? "managed-loopback" : mode, parsed.1, parsed.2))
        }
        return results
    }

    /// `result MODE MEDIAN P99 N` → (mode, median, p99).
    static func result(_ line: String) -> (String, Double, Double)? {
        guard let range = line.range(of: "result ") else { return nil }
        let fields = line[range.upperBound...].split(separator: " ")
        guard fields.count == 4, let median = Double(fields[1]), let p99 = Double(fields[2]) else { return nil }
        return (String(fields[0]), median, p99)
    }

    static func check(_ result: ProcessResult) throws {
        guard result.status == 0 else { throw BenchError("keyhold failed: \(result.stderr)") }
    }

    var daemonLogTail: String { String(keyhold.daemonLog.suffix(2000)) }

    func tearDown() {
        lock.lock()
        defer { lock.unlock() }
        guard !tornDown else { return }
        tornDown = true
        keyhold.deleteTenants()
        keyhold.stopDaemon()
        try? systemd.stop()
        try? FileManager.default.removeItem(atPath: assets)
    }
}
