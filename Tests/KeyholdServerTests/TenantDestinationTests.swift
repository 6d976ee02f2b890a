import Foundation
import Hummingbird
import KeyholdTestTraits
import KeyholdTesting
import NIOCore
import Synchronization
import Testing

/// A hostile tenant points the daemon at the host's own network: a key's base URL (checked when set, validated and on
/// schedule) and an alert webhook. The root daemon reaches only what the admin allowed, connects to the address it
/// checked, follows no redirect, bounds the exchange and never hands back the remote text.
@Suite(.offCooperativePool, .serialized)
struct TenantDestinationTests {
    /// An HTTP service on 127.0.0.1 that counts what reaches it: a model list, a redirect elsewhere, a failure with
    /// text that must stay inside, and an answer that never ends.
    final class InternalService: Sendable {
        let port: Int
        let secretText = "internal-only-" + UUID().uuidString
        private let hits = Mutex<[String: Int]>([:])
        /// What `/v1/models` answers (401 turns a key invalid).
        let modelsStatus = Mutex<HTTPResponse.Status>(.ok)
        private let task = Mutex<Task<Void, any Error>?>(nil)

        var total: Int { hits.withLock { $0.values.reduce(0, +) } }
        func count(_ path: String) -> Int { hits.withLock { $0[path] ?? 0 } }

        private init(port: Int) { self.port = port }

        /// - Parameter redirectTo: where `/redirect/v1/models` sends its client.
        static func start(redirectTo: String = "http://127.0.0.1:9/") async throws -> InternalService {
            let service = InternalService(port: try LoopbackPort.free())
            let router = Router()
            router.get("/v1/models") { _, _ -> Response in
                service.hits.withLock { $0["models", default: 0] += 1 }
                return Response(
                    status: service.modelsStatus.withLock { $0 }, headers: [.contentType: "application/json"],
                    body: .init(byteBuffer: ByteBuffer(string: #"{"object":"list","data":[]}"#)))
            }
            router.get("/redirect/v1/models") { _, _ -> Response in
                service.hits.withLock { $0["redirect", default: 0] += 1 }
                return Response(status: .found, headers: [.location: redirectTo + "v1/models"])
            }
            router.get("/secret/v1/models") { _, _ -> Response in
                service.hits.withLock { $0["secret", default: 0] += 1 }
                return Response(status: .internalServerError, body: .init(byteBuffer: ByteBuffer(string: service.secretText)))
            }
            router.get("/trickle/v1/models") { _, _ -> Response in
                service.hits.withLock { $0["trickle", default: 0] += 1 }
                // Headers at once, then a byte now and then, for ever: only a bound on the whole exchange ends it.
                return Response(
                    status: .ok,
                    body: ResponseBody { writer in
                        while !Task.isCancelled {
                            try await writer.write(ByteBuffer(string: "x"))
                            try await Task.sleep(for: .milliseconds(200))
                        }
                    })
            }
            router.post("/hook") { _, _ -> HTTPResponse.Status in
                service.hits.withLock { $0["hook", default: 0] += 1 }
                return .noContent
            }
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: service.port)))
            service.task.withLock { $0 = Task(executorPreference: StandInExecutor.shared) { try await app.runService() } }
            try #require(await LoopbackPort.waitUntilListening(service.port))
            return service
        }

        func stop() { task.withLock { $0?.cancel() } }
    }

    /// Whether `condition` came true within `timeout` (checked every 50 ms).
    static func waitFor(_ timeout: Duration, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if condition() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return condition()
    }

    struct Rig {
        let keyhold: KeyholdHarness
        let allowed: InternalService
        let forbidden: InternalService
        let plans: String

        init() async throws {
            forbidden = try await InternalService.start()
            allowed = try await InternalService.start(redirectTo: "http://127.0.0.1:\(forbidden.port)/")
            plans = try KeyHealthTests.plans(["checked": "on_invalid_key: keep"])
            keyhold = try KeyholdHarness()
            try keyhold.startDaemon(
                systemdBus: nil,
                extraArguments: ["--plans", plans, "--key-check-timeout", "1", "--internal-destination", "http://127.0.0.1:\(allowed.port)"])
            try #require(try keyhold.cli(["tenant", "create", "acme", "--plan", "checked"]).status == 0)
            // The admin made the allowed service the tenant's destination (on the host's network: --private).
            try #require(try keyhold.cli(["tenant", "allow-egress", "acme", "http://127.0.0.1:\(allowed.port)", "--private"]).status == 0)
        }

        /// `key set acme openai-compatible` with a base URL, validated.
        func setKey(baseURL: String) throws -> ProcessResult {
            try keyhold.cli(["key", "set", "acme", "openai-compatible", "--base-url", baseURL], input: Array("gsk-dest-test\n".utf8))
        }

        func stop() {
            allowed.stop()
            forbidden.stop()
            try? FileManager.default.removeItem(atPath: plans)
        }
    }

    @Test func aKeysBaseURLReachesOnlyWhatTheAdminAllowedAndNoRedirectOrRemoteText() async throws {
        let rig = try await Rig()
        defer { rig.stop() }
        let forbidden = "127.0.0.1:\(rig.forbidden.port)"
        // Not the provider's API and not the admin's destination: refused before anything is sent.
        let unlisted = try rig.setKey(baseURL: "http://\(forbidden)")
        #expect(unlisted.status != 0 && unlisted.stderr.contains("allow-egress acme http://\(forbidden) --private"), "\(unlisted.stderr)")
        let metadata = try rig.setKey(baseURL: "http://169.254.169.254")
        #expect(metadata.status != 0 && metadata.stderr.contains("never reachable"), "\(metadata.stderr)")
        // A numeric spelling that getaddrinfo reads as 127.0.0.1 is no destination an admin can even write.
        let numeric = try rig.keyhold.cli(["tenant", "allow-egress", "acme", "http://2130706433:\(rig.forbidden.port)"])
        #expect(numeric.status != 0 && numeric.stderr.contains("not a valid"), "\(numeric.stderr)")
        // A name the admin allowed (without --private) that resolves to the host's own network when the daemon calls it.
        for name in ["localhost"] {
            let base = "http://\(name):\(rig.forbidden.port)"
            let allowed = try rig.keyhold.cli(["tenant", "allow-egress", "acme", base])
            try #require(allowed.status == 0, "\(allowed.stderr)")
            let refused = try rig.setKey(baseURL: base)
            #expect(refused.status != 0, "\(base) was stored")
            #expect(refused.stderr.contains("on the host's own network") && refused.stderr.contains("--private"), "\(base): \(refused.stderr)")
        }
        #expect(rig.forbidden.total == 0, "the daemon reached a destination nobody allowed")

        // An allowed destination that redirects: the redirect is the answer, and its target is never asked.
        let redirected = try rig.setKey(baseURL: "http://127.0.0.1:\(rig.allowed.port)/redirect")
        #expect(redirected.status != 0 && redirected.stderr.contains("HTTP 302"), "\(redirected.stderr)")
        #expect(rig.allowed.count("redirect") == 1 && rig.forbidden.total == 0, "the redirect was followed")

        // Its failure text stays inside: the tenant learns the status only.
        let failing = try rig.setKey(baseURL: "http://127.0.0.1:\(rig.allowed.port)/secret")
        #expect(failing.status != 0 && failing.stderr.contains("HTTP 500") && rig.allowed.count("secret") == 1, "\(failing.stderr)")
        #expect(!failing.stderr.contains(rig.allowed.secretText) && !rig.keyhold.daemonLog.contains(rig.allowed.secretText))

        // An answer that never ends is cut at the key check's bound (1 s), not held for ever.
        let asked = ContinuousClock.now
        let trickling = try rig.setKey(baseURL: "http://127.0.0.1:\(rig.allowed.port)/trickle")
        #expect(trickling.status != 0 && trickling.stderr.contains("could not reach"), "\(trickling.stderr)")
        #expect(ContinuousClock.now - asked < .seconds(5), "a trickling answer held the key check \(ContinuousClock.now - asked)")

        // What the admin allowed works, and a second rule opens a second destination.
        let stored = try rig.setKey(baseURL: "http://127.0.0.1:\(rig.allowed.port)")
        #expect(stored.status == 0 && rig.allowed.count("models") >= 1, "\(stored.stderr)")
        let allow = try rig.keyhold.cli(["tenant", "allow-egress", "acme", "http://\(forbidden)", "--private"])
        try #require(allow.status == 0, "\(allow.stderr)")
        let ownRule = try rig.setKey(baseURL: "http://\(forbidden)")
        #expect(ownRule.status == 0 && rig.forbidden.count("models") >= 1, "\(ownRule.stderr)")
        _ = rig.keyhold.stopDaemon()
    }

    @Test func anAlertWebhookOnTheHostsNetworkIsRefusedWhenSetAndWhenCalled() async throws {
        let rig = try await Rig()
        defer { rig.stop() }
        func setWebhook(_ url: String) throws -> ProcessResult {
            try rig.keyhold.cli(["tenant", "set-alert-webhook", "acme", "-"], input: Array((url + "\n").utf8))
        }
        let byAddress = try setWebhook("http://127.0.0.1:\(rig.forbidden.port)/hook")
        #expect(byAddress.status != 0 && byAddress.stderr.contains("--internal-destination"), "\(byAddress.stderr)")
        let metadata = try setWebhook("http://169.254.169.254/latest/meta-data")
        #expect(metadata.status != 0 && metadata.stderr.contains("never reachable"), "\(metadata.stderr)")

        // A name is judged when it is called, as it resolves then: `localhost` is the host's own network.
        #expect(try setWebhook("http://localhost:\(rig.forbidden.port)/hook").status == 0)
        #expect(try rig.setKey(baseURL: "http://127.0.0.1:\(rig.allowed.port)").status == 0)
        // The key turns invalid at its next scheduled check, which posts to the webhook: refused, never sent.
        rig.allowed.modelsStatus.withLock { $0 = .unauthorized }
        _ = try KeyHealthTests.waitForHealth(rig.keyhold, "acme", "openai-compatible", "invalid")
        let refusal = "webhook key health of acme not sent: the alert webhook http://localhost:\(rig.forbidden.port)"
        #expect(try await Self.waitFor(.seconds(15)) { rig.keyhold.daemonLog.contains(refusal) }, "\(rig.keyhold.daemonLog.suffix(2000))")
        #expect(rig.forbidden.total == 0, "the webhook reached the host's own network")
        #expect(!rig.keyhold.daemonLog.contains(":\(rig.forbidden.port)/hook"), "a webhook's path (often a secret) is not logged")

        // The admin's internal destination is called.
        #expect(try setWebhook("http://127.0.0.1:\(rig.allowed.port)/hook").status == 0)
        rig.allowed.modelsStatus.withLock { $0 = .ok }
        _ = try KeyHealthTests.waitForHealth(rig.keyhold, "acme", "openai-compatible", "ok")
        #expect(try await Self.waitFor(.seconds(15)) { rig.allowed.count("hook") >= 1 }, "the allowed webhook was never called")
        _ = rig.keyhold.stopDaemon()
    }
}
