import Foundation
import Hummingbird
import KeyholdTestTraits
import KeyholdTesting
import Synchronization
import Testing

/// Usage alerts: once per window at each threshold, an audit record and a webhook POST, retried until it is taken.
@Suite(.offCooperativePool, .serialized) struct ProxyAlertTests {
    @Test func eachThresholdAlertsOnceToTheTenantsWebhookWhichIsRetried() async throws {
        let receiver = try await WebhookReceiver.start(failingFirst: 1)
        defer { receiver.stop() }
        // 1,000 tokens a day; each call uses 250 (240 in, 10 out): 50% after 2 calls, 100% after 4, then refused.
        // The receiver is on the host's own network: the admin allows the daemon to call it.
        let proxy = try await ProxyHarness(tokensPerDay: 1_000, daemonArguments: ["--internal-destination", "http://127.0.0.1:\(receiver.port)"])
        proxy.provider.update { $0.usage = .init(inputTokens: 240, outputTokens: 10, cachedInputTokens: 0, reasoningTokens: 0) }
        // The URL is piped on stdin (`-`): webhook URLs often carry a secret, and argv is public.
        let set = try proxy.keyhold.cli(["tenant", "set-alert-webhook", "globex", "-"], input: Array((receiver.url + "\n").utf8))
        try #require(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("127.0.0.1") && !set.stdout.contains("/hook"), "the CLI prints the host, not the path: \(set.stdout)")
        let shown = try proxy.keyhold.cli(["tenant", "show", "globex"])
        #expect(shown.stdout.contains("alerts   POST http://127.0.0.1") && !shown.stdout.contains("/hook"), "\(shown.stdout)")
        let empty = try proxy.keyhold.cli(["tenant", "set-alert-webhook", "globex", "-"], input: [])
        #expect(empty.status != 0 && empty.stderr.contains("no URL on stdin"), "\(empty.stderr)")
        let bad = try proxy.keyhold.cli(["tenant", "set-alert-webhook", "globex", "ftp://example"])
        #expect(bad.status != 0 && bad.stderr.contains("http:// or https://"))

        var statuses: [Int] = []
        for _ in 0..<6 { statuses.append(try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat).status) }
        #expect(statuses == [200, 200, 200, 200, 429, 429], "the cap refuses once it is spent")

        // 50, 80 and 100%: three deliveries, the first one after a failed attempt (retried with back-off).
        let delivered = try await receiver.waitForDeliveries(3, timeout: .seconds(20))
        #expect(delivered.map(\.threshold).sorted() == [50, 80, 100], "\(delivered)")
        #expect(delivered.allSatisfy { $0.tenant == "globex" && $0.cap == "tokens_per_day" && $0.limit == 1_000 })
        #expect(receiver.attempts == 4, "one failed attempt, then each threshold once")

        let audit = try proxy.keyhold.cli(["audit", "list", "--tenant", "globex", "--action", "usage.alert", "--json"])
        let records = try JSONSerialization.jsonObject(with: Data(audit.stdout.utf8)) as? [[String: Any]] ?? []
        #expect(records.count == 3, "one audit record per threshold: \(audit.stdout)")
        let webhookSet = try proxy.keyhold.cli(["audit", "list", "--tenant", "globex", "--action", "tenant.alert_webhook", "--json"])
        #expect(webhookSet.stdout.contains("127.0.0.1") && !webhookSet.stdout.contains("/hook"), "the audit names the host, not the URL's path")
        try await proxy.stop()
    }
}

/// An HTTP server on 127.0.0.1 that records the alerts POSTed to `/hook`, answering 500 to the first few.
final class WebhookReceiver: Sendable {
    struct Delivery: Decodable, Sendable {
        var tenant: String
        var cap: String
        var threshold: Int
        var used: Double
        var limit: Double
        enum CodingKeys: String, CodingKey {
            case tenant, cap, used, limit
            case threshold = "threshold_percent"
        }
    }

    let port: Int
    private let state: Mutex<(attempts: Int, deliveries: [Delivery], bodies: [Data])>
    private let task: Mutex<Task<Void, any Error>?>

    var url: String { "http://127.0.0.1:\(port)/hook" }
    var attempts: Int { state.withLock { $0.attempts } }

    private init(port: Int) {
        self.port = port
        state = Mutex((0, [], []))
        task = Mutex(nil)
    }

    static func start(failingFirst failures: Int) async throws -> WebhookReceiver {
        let receiver = WebhookReceiver(port: try LoopbackPort.free())
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 16)
            return receiver.state.withLock { state in
                state.attempts += 1
                guard state.attempts > failures else { return .internalServerError }
                state.bodies.append(Data(body.readableBytesView))
                if let delivery = try? JSONDecoder().decode(Delivery.self, from: Data(body.readableBytesView)) { state.deliveries.append(delivery) }
                return .noContent
            }
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: receiver.port)))
        receiver.task.withLock { $0 = Task(executorPreference: StandInExecutor.shared) { try await app.runService() } }
        try #require(await LoopbackPort.waitUntilListening(receiver.port))
        return receiver
    }

    /// The deliveries once there are `count` of them (or what there is at the timeout).
    func waitForDeliveries(_ count: Int, timeout: Duration) async throws -> [Delivery] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let deliveries = state.withLock { $0.deliveries }
            if deliveries.count >= count { return deliveries }
            try await Task.sleep(for: .milliseconds(50))
        }
        return state.withLock { $0.deliveries }
    }

    /// Every body taken so far, parsed as JSON objects, once one of them satisfies `predicate` (or at the timeout).
    func waitForBody(timeout: Duration, where predicate: ([String: String]) -> Bool) async throws -> [String: String]? {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let bodies = state.withLock { $0.bodies }.compactMap { try? JSONDecoder().decode([String: String].self, from: $0) }
            if let match = bodies.first(where: predicate) { return match }
            try await Task.sleep(for: .milliseconds(50))
        }
        return nil
    }

    func stop() {
        task.withLock { $0?.cancel() }
    }
}
