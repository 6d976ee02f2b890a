import AsyncHTTPClient
import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Testing

/// The Responses API through the managed proxy (metered from its own usage shape, stored responses scoped to their
/// tenant), and caps that clamp a request's output maximum instead of refusing it.
@Suite(.offCooperativePool) struct ProxyResponsesTests {
    static let create = #"{"model":"gpt-5-mini","input":"Say hi","max_output_tokens":50}"#
    static let createStream = #"{"model":"gpt-5-mini-2025-08-07","input":"Say hi","max_output_tokens":50,"stream":true}"#

    /// Another managed tenant of the harness's daemon, with a proxy token of its own.
    static func secondTenant(_ proxy: ProxyHarness, name: String) async throws -> String {
        try #require(try proxy.keyhold.cli(["tenant", "create", name, "--plan", "managed"]).status == 0)
        return try await proxy.keyhold.openStore().write { tx in
            let tenant = try tx.tenant(named: name)
            let sandbox = try tx.insertSandbox(tenantID: tenant.id, tenantName: tenant.name)
            return try tx.createProxyToken(tenantID: tenant.id, sandboxID: sandbox.id)
        }
    }

    /// A request of any method to the proxy with a token as OpenAI's SDK sends it.
    static func call(_ proxy: ProxyHarness, _ method: HTTPMethod, _ path: String, token: String) async throws -> ProxyHarness.Answer {
        var request = HTTPClientRequest(url: proxy.baseURL + path)
        request.method = method
        request.headers.add(name: "authorization", value: "Bearer \(token)")
        if method == .POST { request.body = .bytes(ByteBuffer(string: "{}")) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let collected = try await response.body.collect(upTo: 16 << 20)
        return ProxyHarness.Answer(status: Int(response.status.code), headers: response.headers, body: Data(buffer: collected))
    }

    @Test func responsesStreamedAndNotAreMeteredExactlyFromTheirUsage() async throws {
        let proxy = try await ProxyHarness()
        proxy.provider.update { $0.interChunkLatency = .milliseconds(2) }
        let plain = try await proxy.send("/v1/responses", body: Self.create)
        #expect(plain.status == 200 && plain.json["object"] as? String == "response", "\(plain.text)")
        #expect(proxy.provider.requests.last?.bodyString == Self.create, "the body reached the provider unchanged")
        let streamed = try await proxy.send("/v1/responses", body: Self.createStream)
        #expect(streamed.status == 200)
        #expect(streamed.text.contains("event: response.output_text.delta") && streamed.text.contains("event: response.completed"))
        #expect(streamed.text.contains("\"usage\":{"), "response.completed reaches the agent with its usage")

        let rows = try proxy.waitForUsageRows(2)
        // 11 input tokens of which 3 cached, 7 output of which 2 reasoning; gpt-5-mini: 0.25 $/M input, 0.025 cached, 2.00
        // output (each part rounded up to a whole pico-USD, as the proxy charges).
        let cached = Int64((3 * 0.025 * 1_000_000).rounded(.up))
        for row in rows {
            #expect(row.inputTokens == 8 && row.cachedTokens == 3 && row.outputTokens == 7 && row.reasoningTokens == 2)
            #expect(row.costPicoUSD == 8 * 250_000 + cached + 7 * 2_000_000 && row.charged == .usage)
        }
        #expect(rows.map(\.model) == ["gpt-5-mini", "gpt-5-mini-2025-08-07"], "a dated snapshot is its family's model")
        try await proxy.stop()
    }

    @Test func aStoredResponseIsItsTenantsOnlyAndAnotherTenantsIsAnsweredAsUnknown() async throws {
        let proxy = try await ProxyHarness()
        let created = try await proxy.send("/v1/responses", body: Self.create)
        let id = try #require(created.json["id"] as? String)
        let other = try await Self.secondTenant(proxy, name: "initech")

        let own = try await Self.call(proxy, .GET, "/v1/responses/\(id)", token: proxy.token)
        #expect(own.status == 200 && own.json["id"] as? String == id)
        // Another tenant's response: exactly the answer for one that never existed, and nothing reaches the provider.
        let sent = proxy.provider.requestCount
        let unknown = "resp_" + String(repeating: "0", count: 48)
        for (method, suffix) in [(HTTPMethod.GET, ""), (.DELETE, ""), (.POST, "/cancel"), (.GET, "/input_items")] {
            let theirs = try await Self.call(proxy, method, "/v1/responses/\(id)\(suffix)", token: other)
            let none = try await Self.call(proxy, method, "/v1/responses/\(unknown)\(suffix)", token: other)
            #expect(theirs.status == 404 && none.status == 404, "\(method) \(suffix): \(theirs.text)")
            #expect(theirs.text.replacingOccurrences(of: id, with: unknown) == none.text)
        }
        let continued = try await proxy.send(
            "/v1/responses", body: #"{"model":"gpt-5-mini","input":"more","previous_response_id":"\#(id)"}"#, token: other)
        let madeUp = try await proxy.send(
            "/v1/responses", body: #"{"model":"gpt-5-mini","input":"more","previous_response_id":"\#(unknown)"}"#, token: other)
        #expect(continued.status == 400 && continued.json["error"].map { "\($0)" }?.contains("previous_response_not_found") == true)
        #expect(continued.text.replacingOccurrences(of: id, with: unknown) == madeUp.text)
        #expect(proxy.provider.requestCount == sent, "no other tenant's request about the response left the proxy")
        // Its own tenant continues it, lists its input, and deletes it; then it is gone.
        let own2 = try await proxy.send("/v1/responses", body: #"{"model":"gpt-5-mini","input":"more","previous_response_id":"\#(id)"}"#)
        #expect(own2.status == 200, "\(own2.text)")
        #expect(try await Self.call(proxy, .GET, "/v1/responses/\(id)/input_items", token: proxy.token).status == 200)
        #expect(try await Self.call(proxy, .POST, "/v1/responses/\(id)/cancel", token: proxy.token).status == 400, "the provider's own answer")
        let deleted = try await Self.call(proxy, .DELETE, "/v1/responses/\(id)", token: proxy.token)
        #expect(deleted.status == 200 && deleted.json["deleted"] as? Bool == true)
        #expect(try await Self.call(proxy, .GET, "/v1/responses/\(id)", token: proxy.token).status == 404)
        // A restarted daemon still knows whose it is (the store keeps the owners).
        let kept = try #require(try await proxy.send("/v1/responses", body: Self.create).json["id"] as? String)
        proxy.keyhold.stopDaemon()
        try proxy.startDaemon()
        #expect(try await Self.call(proxy, .GET, "/v1/responses/\(kept)", token: proxy.token).status == 200)
        #expect(try await Self.call(proxy, .GET, "/v1/responses/\(kept)", token: other).status == 404)
        try await proxy.stop()
    }

    @Test func countingTokensIsFreeAndBackgroundAndBadBodiesGetTheProvidersErrors() async throws {
        let proxy = try await ProxyHarness()
        let counted = try await proxy.send("/v1/responses/input_tokens", body: #"{"model":"gpt-5-mini","input":"hi"}"#)
        #expect(counted.status == 200 && counted.json["input_tokens"] as? Int == 11, "\(counted.text)")
        let anthropic = try await proxy.send(
            "/v1/messages/count_tokens", body: #"{"model":"claude-haiku-4-5","messages":[{"role":"user","content":"hi"}]}"#, anthropic: true)
        #expect(anthropic.status == 200 && anthropic.json["input_tokens"] as? Int == 11, "\(anthropic.text)")
        let background = try await proxy.send("/v1/responses", body: #"{"model":"gpt-5-mini","input":"hi","background":true}"#)
        #expect(background.status == 400 && background.text.contains("background responses are not served"), "\(background.text)")
        let malformed = try await proxy.send("/v1/responses", body: #"{"model":"gpt-5-mini","input":"hi","max_output_tokens":"many"}"#)
        #expect(malformed.status == 400 && malformed.text.contains("'max_output_tokens' has the wrong type"), "\(malformed.text)")
        let outside = try await proxy.send("/v1/responses", body: #"{"model":"gpt-4o","input":"hi"}"#)
        #expect(outside.status == 403 && outside.text.contains("allowed: gpt-5, gpt-5-mini"), "\(outside.text)")
        let unknownPath = try await Self.call(proxy, .GET, "/v1/responses/not-an-id", token: proxy.token)
        #expect(unknownPath.status == 404)
        // Nothing of these was metered; counting was authenticated.
        #expect(try await Self.call(proxy, .POST, "/v1/responses/input_tokens", token: "sk-made-up").status == 401)
        // One metered request last: once its row is stored, any metered before it would be too (journaled earlier).
        #expect(try await proxy.send("/v1/responses", body: Self.create).status == 200)
        let rows = try proxy.waitForUsageRows(1)
        #expect(rows.count == 1 && rows.first?.charged == .usage, "only the last request was metered: \(rows.map(\.model))")
        try await proxy.stop()
    }

    @Test func aCapNearlySpentClampsTheOutputMaximumThenRefusesBelowTheMinimum() async throws {
        let proxy = try await ProxyHarness(tokensPerDay: 10_000, daemonArguments: ["--key-use-audit-interval-ms", "300"])
        // The provider would write 50,000 tokens; a framework's default asks for 64,000 on every call, more than the
        // whole day's cap. The proxy lowers it to what the day has left; the provider stops there, with its own reason.
        proxy.provider.update { $0.usage.outputTokens = 50_000 }
        let message = #"{"model":"claude-haiku-4-5","max_tokens":64000,"temperature":0.7,"messages":[{"role":"user","content":"write a book"}]}"#
        let first = try await proxy.send("/v1/messages", body: message, anthropic: true)
        #expect(first.status == 200 && first.json["stop_reason"] as? String == "max_tokens", "\(first.text)")
        let forwarded = try #require(proxy.provider.requests.last?.bodyString.data(using: .utf8))
        let lowered = try #require((try JSONSerialization.jsonObject(with: forwarded) as? [String: Any])?["max_tokens"] as? Int)
        #expect(lowered < 10_000 && lowered > 9_900, "lowered to what the day has left after the input's reservation: \(lowered)")
        #expect((first.json["usage"] as? [String: Any])?["output_tokens"] as? Int == lowered)
        #expect(String(decoding: forwarded, as: UTF8.self).contains(#""temperature":0.7"#), "the rest of the body is kept as it was")
        let rows = try proxy.waitForUsageRows(1)
        #expect(rows.first?.clampedFrom == 64_000 && rows.reduce(0) { $0 + $1.totalTokens } <= 10_000, "the cap was not overrun")

        // Less than min_output_tokens (256) left: refused in the provider's shape, with when the cap resets.
        let refused = try await proxy.send("/v1/messages", body: message, anthropic: true)
        #expect(refused.status == 429 && refused.text.contains("rate_limit_error") && refused.text.contains("resets at"), "\(refused.text)")

        // Another tenant on the Responses API: clamped the same way, and the response ends `incomplete`.
        let other = try await Self.secondTenant(proxy, name: "initech")
        let response = try await proxy.send(
            "/v1/responses", body: #"{"model":"gpt-5-mini","input":"write a book","max_output_tokens":64000,"stream":true}"#, token: other)
        #expect(response.status == 200 && response.text.contains("event: response.incomplete"), "\(response.text.suffix(300))")
        #expect(response.text.contains(#""reason":"max_output_tokens""#))
        _ = try proxy.waitForUsageRows(2)
        for tenant in ["globex", "initech"] {
            let usage = try proxy.keyhold.cli(["usage", "show", tenant, "--json"]).stdout
            #expect(usage.contains("\"clamped_this_month\" : 1") || usage.contains("\"clamped_this_month\":1"), "\(tenant): \(usage)")
        }
        let deadline = ContinuousClock.now + .seconds(10)
        var audited: [[String: Any]] = []
        while ContinuousClock.now < deadline {
            let listed = try proxy.keyhold.cli(["audit", "list", "--action", "usage.clamp", "--json"]).stdout
            audited = SandboxHarness.jsonObjects(listed).compactMap { $0["event"] as? [String: Any] }
            if audited.count >= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(Set(audited.compactMap { $0["tenant"] as? String }) == ["globex", "initech"], "\(audited)")
        #expect(audited.allSatisfy { ($0["details"] as? [String: String])?["largest_asked"] == "64000" }, "\(audited)")
        try await proxy.stop()
    }
}
