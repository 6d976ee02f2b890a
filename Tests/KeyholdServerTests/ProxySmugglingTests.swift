import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

@testable import KeyholdProxy

/// A body that says two things at once is refused: the proxy would check one and the provider would run the other.
@Suite(.offCooperativePool, .serialized)
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

    /// What the platform's key would pay for beyond what the reservation can bound is refused, naming the field.
    @Test func whatCannotBePricedIsRefusedByFieldAndNeverSent() async throws {
        let proxy = try await ProxyHarness()
        let image = #"{"type":"image_url","image_url":{"url":"https://attacker.example/huge.png"}}"#
        let attempts: [(path: String, anthropic: Bool, body: String, field: String)] = [
            (
                "/v1/chat/completions", false,
                #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"text","text":"look"},\#(image)]}]}"#,
                "messages[0].content[1].image_url"
            ),
            (
                "/v1/chat/completions", false,
                #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-abc"}}]}]}"#,
                "messages[0].content[0].file.file_id"
            ),
            ("/v1/chat/completions", false, #"{"model":"gpt-4o-mini","service_tier":"priority","messages":[]}"#, "service_tier"),
            ("/v1/chat/completions", false, #"{"model":"gpt-4o-mini","web_search_options":{},"messages":[]}"#, "web_search_options"),
            ("/v1/chat/completions", false, #"{"model":"gpt-4o-mini","modalities":["text","audio"],"messages":[]}"#, "modalities"),
            (
                "/v1/responses", false,
                #"{"model":"gpt-5-mini","input":[{"role":"user","content":[{"type":"input_file","file_url":"https://attacker.example/a.pdf"}]}]}"#,
                "input[0].content[0].file_url"
            ),
            (
                "/v1/responses", false, #"{"model":"gpt-5-mini","input":"hi","tools":[{"type":"function","name":"f"},{"type":"web_search"}]}"#,
                "tools[1].type"
            ),
            (
                "/v1/messages", true,
                #"{"model":"claude-haiku-4-5","max_tokens":50,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://attacker.example/a.pdf"}}]}]}"#,
                "messages[0].content[0].source"
            ),
            (
                "/v1/messages", true,
                #"{"model":"claude-haiku-4-5","max_tokens":50,"tools":[{"type":"web_search_20250305","name":"web_search"}],"messages":[]}"#,
                "tools[0].type"
            ),
            ("/v1/messages", true, #"{"model":"claude-haiku-4-5","max_tokens":50,"mcp_servers":[{"type":"url"}],"messages":[]}"#, "mcp_servers"),
        ]
        for attempt in attempts {
            let answer = try await proxy.send(attempt.path, body: attempt.body, anthropic: attempt.anthropic)
            #expect(answer.status == 400, "\(attempt.body): \(answer.text)")
            let error = try #require(answer.json["error"] as? [String: Any], "\(answer.text)")
            #expect((error["message"] as? String)?.hasPrefix("'\(attempt.field)' cannot be priced") == true, "\(attempt.field): \(answer.text)")
            #expect(error["type"] as? String == "invalid_request_error")
        }
        let beta = try await proxy.send(
            "/v1/messages", body: ProxyMeteringTests.message, anthropic: true, headers: [("anthropic-beta", "context-1m-2025-08-07")])
        #expect(beta.status == 400 && beta.text.contains("'anthropic-beta' cannot be priced"), "\(beta.text)")
        #expect(proxy.provider.requests.isEmpty, "an unpriced request reached the provider")

        // Inline content is counted in the body and passes; organisation and project headers are not forwarded.
        let inline =
            #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"properties":{"image_url":{"type":"string"},"file_id":{"type":"string"}}}}}]}"#
        let passed = try await proxy.send(
            "/v1/chat/completions", body: inline, headers: [("openai-organization", "org-other"), ("openai-project", "proj-other")])
        #expect(passed.status == 200, "\(passed.text)")
        let sent = try #require(proxy.provider.requests.last)
        #expect(sent.header("openai-organization") == nil && sent.header("openai-project") == nil)
        try await proxy.stop()
    }

    /// `n` completions may each run to the maximum: the reservation covers all of them, and a clamp shares what is left.
    @Test func nCompletionsAreReservedAsNAndAClampSharesWhatIsLeft() async throws {
        let proxy = try await ProxyHarness(tokensPerDay: 1_000)
        let body = #"{"model":"gpt-4o-mini","n":6,"max_tokens":400,"messages":[{"role":"user","content":"hi"}]}"#
        let answer = try await proxy.send("/v1/chat/completions", body: body)
        #expect(answer.status == 200, "\(answer.text)")
        let sent = try #require(proxy.provider.requests.last)
        let forwarded = try #require(try JSONSerialization.jsonObject(with: Data(sent.body)) as? [String: Any])
        let each = try #require(forwarded["max_tokens"] as? Int, "\(sent.bodyString)")
        #expect(each * 6 <= 1_000 && each < 400, "six completions of \(each) tokens can overrun a 1,000-token day")
        let zero = try await proxy.send("/v1/chat/completions", body: #"{"model":"gpt-4o-mini","n":0,"messages":[]}"#)
        #expect(zero.status == 400 && zero.text.contains("n must be from 1 to 128"), "\(zero.text)")
        // Found by fuzzing: a reservation of n × max_tokens (or input + max_tokens) past Int.max stopped the daemon.
        for (body, refusal) in [
            (#"{"model":"gpt-4o-mini","n":2,"max_tokens":9000000000000000000,"messages":[]}"#, "max_tokens must be at most 16777216"),
            (#"{"model":"gpt-4o-mini","max_completion_tokens":9223372036854775807,"messages":[]}"#, "max_completion_tokens must be at most"),
            (#"{"model":"gpt-4o-mini","n":100000000000,"max_tokens":100000000,"messages":[]}"#, "must be at most"),
            (#"{"model":"gpt-4o-mini","n":1000,"messages":[]}"#, "n must be from 1 to 128"),
            // Of two stated maximums, the refusal names the one out of range.
            (#"{"model":"gpt-4o-mini","max_tokens":100,"max_completion_tokens":90000000,"messages":[]}"#, "max_completion_tokens must be at most"),
        ] {
            let answer = try await proxy.send("/v1/chat/completions", body: body)
            #expect(answer.status == 400 && answer.text.contains(refusal), "\(body): \(answer.text)")
        }
        let after = try await proxy.send("/v1/chat/completions", body: #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#)
        #expect(after.status == 200, "the proxy still answers: \(after.text)")
        try await proxy.stop()
    }
}
