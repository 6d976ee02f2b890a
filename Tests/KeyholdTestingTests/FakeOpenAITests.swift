import Foundation
import KeyholdTesting
import Testing

@Suite("FakeProvider: OpenAI")
struct FakeOpenAITests {
    @Test func modelsAcceptsRightKeyAndRejectsWrongKey() async throws {
        try await withFakeProvider { provider in
            let ok = try await send(provider, "GET", "/v1/models", headers: openAIAuth)
            #expect(ok.status == 200)
            #expect(ok.json["object"] as? String == "list")
            let first = (ok.json["data"] as? [[String: Any]])?.first
            #expect(first?["object"] as? String == "model")
            #expect(first?["id"] as? String == "gpt-4o-mini")

            let wrong = try await send(provider, "GET", "/v1/models", headers: [("Authorization", "Bearer sk-wrong-key-1234")])
            #expect(wrong.status == 401)
            let error = try #require(wrong.json["error"] as? [String: Any])
            #expect(error["code"] as? String == "invalid_api_key")
            #expect(error["type"] as? String == "invalid_request_error")
            #expect(error.keys.sorted() == ["code", "message", "param", "type"])
            #expect(error["param"] is NSNull)

            let missing = try await send(provider, "GET", "/v1/models")
            #expect(missing.status == 401)
            #expect((missing.json["error"] as? [String: Any])?["code"] is NSNull)
        }
    }

    @Test func chatCompletionReportsConfiguredUsage() async throws {
        try await withFakeProvider { provider in
            provider.update {
                $0.usage = .init(inputTokens: 100, outputTokens: 20, cachedInputTokens: 40, reasoningTokens: 5)
                $0.responseText = "Hi there"
            }
            let response = try await send(
                provider, "POST", "/v1/chat/completions", headers: openAIAuth,
                json: #"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#
            )
            #expect(response.status == 200)
            #expect(response.header("content-type") == "application/json")
            let json = response.json
            #expect(json["object"] as? String == "chat.completion")
            #expect(json["model"] as? String == "gpt-4o")
            let choice = try #require((json["choices"] as? [[String: Any]])?.first)
            #expect((choice["message"] as? [String: Any])?["content"] as? String == "Hi there")
            #expect(choice["finish_reason"] as? String == "stop")
            let usage = try #require(json["usage"] as? [String: Any])
            #expect(usage["prompt_tokens"] as? Int == 100)
            #expect(usage["completion_tokens"] as? Int == 20)
            #expect(usage["total_tokens"] as? Int == 120)
            #expect((usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 40)
            #expect((usage["completion_tokens_details"] as? [String: Any])?["reasoning_tokens"] as? Int == 5)
        }
    }

    @Test(arguments: [false, true])
    func chatCompletionStreamsSeparateChunks(includeUsage: Bool) async throws {
        var configuration = FakeProvider.Configuration(streamChunkCount: 5, interChunkLatency: .milliseconds(5))
        configuration.usage.outputTokens = 33
        try await withFakeProvider(configuration) { provider in
            let streamOptions = includeUsage ? #","stream_options":{"include_usage":true}"# : ""
            let response = try await send(
                provider, "POST", "/v1/chat/completions", headers: openAIAuth,
                json: #"{"model":"gpt-4o-mini","stream":true,"messages":[]"# + streamOptions + "}"
            )
            #expect(response.status == 200)
            #expect(response.header("content-type")?.hasPrefix("text/event-stream") == true)
            #expect(response.parts.count > 1)
            let lines = response.dataLines
            #expect(lines.last == "[DONE]")
            let chunks = lines.dropLast().map(jsonObject)
            #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
            let text = chunks.compactMap { chunk -> String? in
                let choice = (chunk["choices"] as? [[String: Any]])?.first
                return (choice?["delta"] as? [String: Any])?["content"] as? String
            }.joined()
            #expect(text == provider.configuration.responseText)
            let usageChunks = chunks.filter { ($0["choices"] as? [Any])?.isEmpty == true }
            if includeUsage {
                #expect(usageChunks.count == 1)
                #expect(chunks.last.map { ($0["choices"] as? [Any])?.isEmpty == true } == true)
                let usage = try #require(usageChunks.first?["usage"] as? [String: Any])
                #expect(usage["completion_tokens"] as? Int == 33)
            } else {
                #expect(usageChunks.isEmpty)
                #expect(chunks.allSatisfy { $0["usage"] == nil })
            }
        }
    }

    @Test func embeddingsReturnOneVectorPerInput() async throws {
        try await withFakeProvider { provider in
            let response = try await send(
                provider, "POST", "/v1/embeddings", headers: openAIAuth,
                json: #"{"model":"text-embedding-3-small","input":["a","b"],"dimensions":16}"#
            )
            #expect(response.status == 200)
            #expect(response.json["object"] as? String == "list")
            let data = try #require(response.json["data"] as? [[String: Any]])
            #expect(data.count == 2)
            #expect(data.map { $0["index"] as? Int } == [0, 1])
            #expect((data.first?["embedding"] as? [Double])?.count == 16)
            #expect((response.json["usage"] as? [String: Any])?["prompt_tokens"] as? Int == 11)

            let wrong = try await send(
                provider, "POST", "/v1/embeddings", headers: [("Authorization", "Bearer nope")], json: #"{"input":"a"}"#
            )
            #expect(wrong.status == 401)
            #expect((wrong.json["error"] as? [String: Any])?["code"] as? String == "invalid_api_key")
        }
    }
}
