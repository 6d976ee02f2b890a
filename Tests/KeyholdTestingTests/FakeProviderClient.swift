import AsyncHTTPClient
import Foundation
import KeyholdTesting
import NIOCore
import NIOHTTP1

/// A response read part by part, as the test client saw it arrive.
struct ReceivedResponse {
    var status: Int
    var headers: HTTPHeaders
    var parts: [String]
    var body: String { parts.joined() }

    /// The first value of the response header `name`.
    func header(_ name: String) -> String? { headers.first(name: name) }

    /// The body parsed as a JSON object (empty when it is not one).
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:]
    }

    /// Payloads of the `data:` lines of an event stream, in order.
    var dataLines: [String] {
        body.split(separator: "\n").filter { $0.hasPrefix("data: ") }.map { String($0.dropFirst(6)) }
    }

    /// Names of the `event:` lines of an event stream, in order.
    var eventNames: [String] {
        body.split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
    }
}

/// Sends one request to `provider` and reads the whole response, keeping body parts separate.
func send(
    _ provider: FakeProvider,
    _ method: String = "GET",
    _ path: String,
    headers: [(String, String)] = [],
    json: String? = nil,
    client: HTTPClient = .shared
) async throws -> ReceivedResponse {
    var request = HTTPClientRequest(url: provider.baseURL + path)
    request.method = HTTPMethod(rawValue: method)
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let json {
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: json))
    }
    let response = try await client.execute(request, timeout: .seconds(10))
    var parts: [String] = []
    for try await part in response.body {
        parts.append(String(buffer: part))
    }
    return ReceivedResponse(status: Int(response.status.code), headers: response.headers, parts: parts)
}

let openAIAuth = [("Authorization", "Bearer " + FakeProvider.Configuration.defaultOpenAIKey)]
let anthropicAuth = [
    ("x-api-key", FakeProvider.Configuration.defaultAnthropicKey),
    ("anthropic-version", "2023-06-01"),
]
let geminiAuth = [("x-goog-api-key", FakeProvider.Configuration.defaultGeminiKey)]

/// Parses one JSON object from a string (empty when it is not one).
func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

/// Runs `body` against a freshly started fake provider and stops it afterwards.
func withFakeProvider<T>(
    _ configuration: FakeProvider.Configuration = .init(),
    _ body: (FakeProvider) async throws -> T
) async throws -> T {
    let provider = try await FakeProvider.start(configuration: configuration)
    do {
        let result = try await body(provider)
        try await provider.stop()
        return result
    } catch {
        try await provider.stop()
        throw error
    }
}
