import Foundation
import KeyholdTesting
import Testing

@Suite("FakeProvider: Anthropic")
struct FakeAnthropicTests {
    @Test func modelsAcceptsRightKeyAndRejectsWrongKey() async throws {
        try await withFakeProvider { provider in
            let ok = try await send(provider, "GET", "/v1/models", headers: anthropicAuth)
            #expect(ok.status == 200)
            let first = try #require((ok.json["data"] as? [[String: Any]])?.first)
            #expect(first["type"] as? String == "model")
            #expect(ok.json["has_more"] as? Bool == false)

            let wrong = try await send(
                provider, "GET", "/v1/models", headers: [("x-api-key", "wrong"), ("anthropic-version", "2023-06-01")]
            )
            #expect(wrong.status == 401)
            #expect(wrong.json["type"] as? String == "error")
            let error = try #require(wrong.json["error"] as? [String: Any])
            #expect(error["type"] as? String == "authentication_error")
            #expect(error["message"] is String)

            let noVersion = try await send(
                provider, "GET", "/v1/models", headers: [("x-api-key", FakeProvider.Configuration.defaultAnthropicKey)]
            )
            #expect(noVersion.status == 400)
            #expect((noVersion.json["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")
        }
    }

    @Test func messageReportsConfiguredUsage() async throws {
        let configuration = FakeProvider.Configuration(
            usage: .init(inputTokens: 50, outputTokens: 9, cacheCreationInputTokens: 12, cacheReadInputTokens: 30),
            responseText: "Bonjour"
        )
        try await withFakeProvider(configuration) { provider in
            let response = try await send(
                provider, "POST", "/v1/messages", headers: anthropicAuth,
                json: #"{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(response.status == 200)
            let json = response.json
            #expect(json["type"] as? String == "message")
            #expect(json["role"] as? String == "assistant")
            #expect(json["model"] as? String == "claude-haiku-4-5")
            #expect(json["stop_reason"] as? String == "end_turn")
            let block = try #require((json["content"] as? [[String: Any]])?.first)
            #expect(block["type"] as? String == "text")
            #expect(block["text"] as? String == "Bonjour")
            let usage = try #require(json["usage"] as? [String: Any])
            #expect(usage["input_tokens"] as? Int == 50)
            #expect(usage["output_tokens"] as? Int == 9)
            #expect(usage["cache_creation_input_tokens"] as? Int == 12)
            #expect(usage["cache_read_input_tokens"] as? Int == 30)
        }
    }

    @Test func messageStreamsEventsInOrder() async throws {
        let configuration = FakeProvider.Configuration(streamChunkCount: 3, interChunkLatency: .milliseconds(5))
        try await withFakeProvider(configuration) { provider in
            let response = try await send(
                provider, "POST", "/v1/messages", headers: anthropicAuth,
                json: #"{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[]}"#
            )
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("text/event-stream") == true)
            #expect(response.parts.count > 1)
            #expect(
                response.eventNames == [
                    "message_start", "content_block_start", "ping",
                    "content_block_delta", "content_block_delta", "content_block_delta",
                    "content_block_stop", "message_delta", "message_stop",
                ]
            )
            let events = response.dataLines.map(jsonObject)
            #expect(events.map { $0["type"] as? String } == response.eventNames.map { Optional($0) })
            let start = try #require(events.first?["message"] as? [String: Any])
            #expect((start["usage"] as? [String: Any])?["input_tokens"] as? Int == 11)
            let text = events.compactMap { ($0["delta"] as? [String: Any])?["text"] as? String }.joined()
            #expect(text == provider.configuration.responseText)
            let delta = try #require(events.first { $0["type"] as? String == "message_delta" })
            #expect((delta["usage"] as? [String: Any])?["output_tokens"] as? Int == 7)
        }
    }

    @Test func wrongKeyOnMessagesGetsAnthropicError() async throws {
        try await withFakeProvider { provider in
            let response = try await send(
                provider, "POST", "/v1/messages", headers: [("x-api-key", "bad"), ("anthropic-version", "2023-06-01")],
                json: #"{"model":"m","max_tokens":1,"messages":[]}"#
            )
            #expect(response.status == 401)
            #expect((response.json["error"] as? [String: Any])?["type"] as? String == "authentication_error")
        }
    }
}
