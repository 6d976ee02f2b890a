import AsyncHTTPClient
import Foundation
import KeyholdTesting
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("FakeProvider: failures, recording, latency")
struct FakeProviderBehaviourTests {
    @Test func injectedFailureUsesEachProvidersErrorShape() async throws {
        try await withFakeProvider { provider in
            provider.update { $0.failure = .init(status: 429, message: "slow down", remaining: 2, retryAfter: "7") }
            let openAI = try await send(
                provider, "POST", "/v1/chat/completions", headers: openAIAuth, json: #"{"model":"m","messages":[]}"#
            )
            #expect(openAI.status == 429)
            #expect(openAI.header("retry-after") == "7")
            let openAIError = try #require(openAI.json["error"] as? [String: Any])
            #expect(openAIError["message"] as? String == "slow down")
            #expect(openAIError["code"] as? String == "rate_limit_exceeded")

            let anthropic = try await send(
                provider, "POST", "/v1/messages", headers: anthropicAuth, json: #"{"model":"m","max_tokens":1,"messages":[]}"#
            )
            #expect(anthropic.status == 429)
            #expect((anthropic.json["error"] as? [String: Any])?["type"] as? String == "rate_limit_error")

            let recovered = try await send(provider, "GET", "/v1/models", headers: openAIAuth)
            #expect(recovered.status == 200)
            #expect(provider.configuration.failure == nil)

            provider.update { $0.failure = .init(status: 503, providers: [.gemini]) }
            let gemini = try await send(provider, "GET", "/v1beta/models", headers: geminiAuth)
            #expect(gemini.status == 503)
            #expect((gemini.json["error"] as? [String: Any])?["status"] as? String == "UNAVAILABLE")
            let unaffected = try await send(provider, "GET", "/v1/models", headers: anthropicAuth)
            #expect(unaffected.status == 200)
        }
    }

    @Test func streamIsCutAfterConfiguredEvents() async throws {
        let configuration = FakeProvider.Configuration(
            streamChunkCount: 6, interChunkLatency: .milliseconds(2), cutStreamAfterEvents: 3
        )
        try await withFakeProvider(configuration) { provider in
            var request = HTTPClientRequest(url: provider.baseURL + "/v1/chat/completions")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer " + FakeProvider.Configuration.defaultOpenAIKey)
            request.body = .bytes(ByteBuffer(string: #"{"model":"m","stream":true,"messages":[]}"#))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            #expect(response.status.code == 200)
            var received = ""
            await #expect(throws: (any Error).self) {
                for try await part in response.body { received += String(buffer: part) }
            }
            // At most the three events before the cut: the close may overtake the last of them on a busy machine.
            let events = received.components(separatedBy: "data: ").count - 1
            #expect(events <= 3, "\(events) events before the cut")
            #expect(!received.contains("[DONE]"))
        }
    }

    @Test func recordsRequestsByteForByte() async throws {
        try await withFakeProvider { provider in
            #expect(provider.requestCount == 0)
            let body = #"{"model":"gpt-4o-mini", "messages":[{"role":"user","content":"héllo\n"}], "extra":  1}"#
            _ = try await send(
                provider, "POST", "/v1/chat/completions",
                headers: openAIAuth + [("X-Custom-Trace", "abc")], json: body
            )
            _ = try await send(provider, "GET", "/v1beta/models?key=zzz")
            #expect(provider.requestCount == 2)
            let first = try #require(provider.requests.first)
            #expect(first.method == "POST")
            #expect(first.path == "/v1/chat/completions")
            #expect(first.provider == .openAI)
            #expect(first.body == Array(body.utf8))
            #expect(first.header("x-custom-trace") == "abc")
            #expect(first.header("authorization") == "Bearer " + FakeProvider.Configuration.defaultOpenAIKey)
            #expect(first.connectionNoDelay == true)
            let second = try #require(provider.requests.last)
            #expect(second.provider == .gemini)
            #expect(second.query == "key=zzz")
            #expect(second.body.isEmpty)
            provider.resetRequests()
            #expect(provider.requests.isEmpty)
        }
    }

    @Test func firstByteLatencyIsApplied() async throws {
        try await withFakeProvider(.init(firstByteLatency: .milliseconds(150))) { provider in
            let start = ContinuousClock.now
            let response = try await send(provider, "GET", "/v1/models", headers: openAIAuth)
            #expect(response.status == 200)
            #expect(ContinuousClock.now - start >= .milliseconds(150))
        }
    }

    /// Guards against Nagle + delayed ACK (≈40 ms per request) on either side.
    @Test func trivialRequestIsFastOnAWarmConnection() async throws {
        try await withFakeProvider { provider in
            let client = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                let body = #"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#
                for _ in 0..<3 {
                    _ = try await send(provider, "POST", "/v1/chat/completions", headers: openAIAuth, json: body, client: client)
                }
                var samples: [Duration] = []
                for _ in 0..<20 {
                    let start = ContinuousClock.now
                    let response = try await send(
                        provider, "POST", "/v1/chat/completions", headers: openAIAuth, json: body, client: client
                    )
                    samples.append(ContinuousClock.now - start)
                    #expect(response.status == 200)
                }
                let median = samples.sorted()[samples.count / 2]
                #expect(median < .milliseconds(20), "median \(median) over \(samples.count) requests")
                #expect(provider.requests.allSatisfy { $0.connectionNoDelay == true })
                try await client.shutdown()
            } catch {
                try await client.shutdown()
                throw error
            }
        }
    }

    @Test func stopClosesTheListener() async throws {
        let provider = try await FakeProvider.start(configuration: .init())
        _ = try await send(provider, "GET", "/v1/models", headers: openAIAuth)
        try await provider.stop()
        #expect(connectResult(port: provider.port) == ECONNREFUSED)
    }
}

/// `0` when a TCP connect to 127.0.0.1:`port` succeeds, else the `errno` of the failure.
private func connectResult(port: Int) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return errno }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    return result == 0 ? 0 : errno
}
