import AsyncHTTPClient
import Foundation
import GRDB
import KeyholdCore
import KeyholdStore
import KeyholdTesting
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Testing

/// The real daemon with its metering proxy on loopback, a fake provider upstream, and one managed tenant
/// with a proxy token (as a sandbox start would create it).
final class ProxyHarness: @unchecked Sendable {
    let keyhold: KeyholdHarness
    let provider: FakeProvider
    let port: Int
    let plansDirectory: String
    /// More `keyhold serve` options (used by the next `startDaemon`).
    var daemonArguments: [String]
    var token = ""
    var tenantID: Int64 = 0

    /// - Parameter caps: the managed plan's caps in the test plans (small, so tests can reach them).
    /// - Parameter daemonArguments: more `keyhold serve` options.
    /// - Parameter providerTLS: the fake provider serves HTTPS with this configuration.
    /// - Parameter journalDisk: mounts a tmpfs of this many bytes as the usage journal's directory (a disk the test
    ///   can fill); unmounted by `stop()`.
    init(
        tokensPerDay: Int = 2_000_000, requestsPerMinute: Int = 100_000, defaultMaxTokens: Int = 64, daemonArguments: [String] = [],
        providerTLS: TLSConfiguration? = nil, journalDisk: Int? = nil
    ) async throws {
        provider = try await FakeProvider.start(tls: providerTLS)
        keyhold = try KeyholdHarness()
        if let journalDisk {
            let journal = keyhold.stateDirectory + "/usage-journal"
            try FileManager.default.createDirectory(atPath: journal, withIntermediateDirectories: true)
            let mounted = try ProcessRunner.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(journalDisk),mode=0700", "tmpfs", journal])
            try #require(mounted.status == 0, "\(mounted.stderr)")
            journalMounted = true
        }
        port = try LoopbackPort.free()
        plansDirectory = keyhold.root + "/plans"
        self.daemonArguments = daemonArguments
        try FileManager.default.createDirectory(atPath: plansDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: BuildProducts.plansDirectory + "/byok.yaml", toPath: plansDirectory + "/byok.yaml")
        let managed = try String(contentsOfFile: BuildProducts.plansDirectory + "/managed.yaml", encoding: .utf8)
            .replacingOccurrences(of: "tokens_per_day: 2000000", with: "tokens_per_day: \(tokensPerDay)")
            .replacingOccurrences(of: "requests_per_minute: 60", with: "requests_per_minute: \(requestsPerMinute)")
            .replacingOccurrences(of: "default_max_tokens: 4096", with: "default_max_tokens: \(defaultMaxTokens)")
        try managed.write(toFile: plansDirectory + "/managed.yaml", atomically: true, encoding: .utf8)
        try startDaemon()
        for (name, key) in [("openai", FakeProvider.Configuration.defaultOpenAIKey), ("anthropic", FakeProvider.Configuration.defaultAnthropicKey)] {
            let set = try keyhold.cli(["platform", "set-key", name, "--no-validate", "--skip-shape-check"], input: Array(key.utf8))
            try #require(set.status == 0, "\(set.stderr)")
        }
        try #require(try keyhold.cli(["tenant", "create", "globex", "--plan", "managed"]).status == 0)
        let store = try keyhold.openStore()
        (token, tenantID) = try await store.write { tx in
            let tenant = try tx.tenant(named: "globex")
            let sandbox = try tx.insertSandbox(tenantID: tenant.id, tenantName: tenant.name)
            return (try tx.createProxyToken(tenantID: tenant.id, sandboxID: sandbox.id), tenant.id)
        }
    }

    func startDaemon(environment: [String: String] = [:]) throws {
        try keyhold.startDaemon(
            systemdBus: nil,
            extraArguments: [
                "--plans", plansDirectory, "--proxy", "127.0.0.1:\(port)", "--provider-base-url", "openai=\(provider.baseURL)",
                "--provider-base-url", "anthropic=\(provider.baseURL)",
            ] + daemonArguments,
            environment: environment
        )
        try #require(LoopbackPort.waitUntilListening(port))
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    struct Answer {
        var status: Int
        var headers: HTTPHeaders
        var body: Data
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
    }

    /// Sends a request to the proxy as an SDK would (OpenAI: Bearer; Anthropic: x-api-key).
    func send(_ path: String, body: String, anthropic: Bool = false, token: String? = nil, headers: [(String, String)] = []) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if anthropic {
            request.headers.add(name: "x-api-key", value: token ?? self.token)
            request.headers.add(name: "anthropic-version", value: "2023-06-01")
        } else {
            request.headers.add(name: "authorization", value: "Bearer \(token ?? self.token)")
        }
        request.body = .bytes(ByteBuffer(string: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(buffer: collected))
    }

    /// The usage rows stored so far.
    func usageRows() throws -> [UsageRow] {
        try Store.openReadOnly(location: keyhold.storeLocation).readNow { tx in try tx.usageRequests() }
    }

    /// Waits (bounded: 5 s) until the daemon's proxy has seen every change committed so far to what it caches: at
    /// once on SQLite (checked per request), when the commit's notification arrives on PostgreSQL (a change made by
    /// another host, or here behind Keyhold's back). Returns whether it caught up.
    func proxyCaughtUp() async throws -> Bool {
        let committed = try Store.openReadOnly(location: keyhold.storeLocation).readNow { tx in try tx.lookupGeneration() }
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            let health = try await AdminHTTP(.socket(keyhold.socketPath)).send("GET", "/v1/health")
            if let seen = (health.json as? [String: Any])?["proxy_generation"] as? Int, seen >= committed { return true }
            try await Task.sleep(for: .milliseconds(2))
        }
        return false
    }

    /// Waits (bounded: 10 s) until `count` usage rows are stored and settled (the journal is flushed every 200 ms;
    /// a request still in flight at a flush is first stored charged `in-flight`).
    func waitForUsageRows(_ count: Int) throws -> [UsageRow] {
        let deadline = Date().addingTimeInterval(10)
        var rows: [UsageRow] = []
        while Date() < deadline {
            rows = try usageRows()
            if rows.count >= count && !rows.contains(where: { $0.charged == .inFlight }) { return rows }
            usleep(50_000)
        }
        Issue.record("expected \(count) usage rows, found \(rows.count)")
        return rows
    }

    /// The usage journal's directory in the state directory.
    var journalDirectory: String { keyhold.stateDirectory + "/usage-journal" }
    private var journalMounted = false

    func stop() async throws {
        keyhold.stopDaemon()
        if journalMounted { _ = try ProcessRunner.run("/bin/umount", [journalDirectory]) }
        try await provider.stop()
    }
}
