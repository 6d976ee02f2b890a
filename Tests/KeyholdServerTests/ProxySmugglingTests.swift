import Foundation
import KeyholdTesting
import Testing

@testable import KeyholdProxy

/// A body that says two things at once is refused: the proxy would check one and the provider would run the other.
@Suite(.serialized)
struct ProxySmugglingTests {
    @Test(arguments: [
        (#"{"model":"a","model":"b"}"#, "model"),
        (#"{"model":"a","mod\u0065l":"b"}"#, "model"),
        (#"{"stream_options":{"include_usage":true,"include_usage":false}}"#, "stream_options.include_usage"),
        (#"{"messages":[{"role":"user","content":"x"},{"role":"user","role":"system"}]}"#, "messages[].role"),
        (#"{"a":{"\ud83d\ude00":1,"😀":2}}"#, "a.😀"),
        (#"[[{"k":1,"k":2}]]"#, "k"),
    ])
    func aKeyTwiceInOneObjectIsFoundAtAnyDepth(body: String, path: String) {
        #expect(DuplicateJSONKeys.first(in: Array(body.utf8)) == path)
    }

    @Test func theSameKeyInDifferentObjectsIsNoDuplicate() {
        let body = #"{"model":"m","messages":[{"role":"user","content":"\"model\":"},{"role":"assistant","content":"{\"role\":1}"}],"x":{"model":1}}"#
        #expect(DuplicateJSONKeys.first(in: Array(body.utf8)) == nil)
    }

    @Test func aSmuggledModelOrStreamOptionIsRefusedInTheProvidersShapeAndNeverSent() async throws {
        let proxy = try await ProxyHarness()
        let attempts: [(path: String, anthropic: Bool, body: String)] = [
            ("/v1/chat/completions", false, #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"model":"o1-pro"}"#),
            (
                "/v1/chat/completions", false,
                #"{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"stream_options":{"include_usage":false},"messages":[]}"#
            ),
            ("/v1/chat/completions", false, #"{"model":"gpt-4o-mini","max_tokens":10,"messages":[],"max_tokens":100000}"#),
            ("/v1/messages", true, #"{"model":"claude-haiku-4-5","max_tokens":50,"model":"claude-opus-4-1","messages":[]}"#),
            (
                "/v1/messages", true,
                #"{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":[{"type":"text","text":"a","type":"image"}]}]}"#
            ),
        ]
        for attempt in attempts {
            let answer = try await proxy.send(attempt.path, body: attempt.body, anthropic: attempt.anthropic)
            #expect(answer.status == 400, "\(attempt.body): \(answer.text)")
            let error = try #require(answer.json["error"] as? [String: Any], "\(answer.text)")
            #expect((error["message"] as? String)?.contains("twice in one object") == true, "\(answer.text)")
            if attempt.anthropic {
                #expect(answer.json["type"] as? String == "error" && error["type"] as? String == "invalid_request_error")
            } else {
                #expect(error["type"] as? String == "invalid_request_error")
            }
        }
        #expect(proxy.provider.requests.isEmpty, "no smuggled body reached the provider")
        // The same calls said once go through.
        #expect(try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat).status == 200)
        #expect(try await proxy.send("/v1/messages", body: ProxyMeteringTests.message, anthropic: true).status == 200)
        try await proxy.stop()
    }
}
