import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Records each request, then answers it in the wire format of the provider it targets.
struct FakeProviderHandler: Sendable {
    let state: FakeProviderState

    /// Requests larger than this are rejected by Hummingbird with 413.
    static let maximumBodySize = 64 << 20

    func respond(to request: Request, context: FakeProviderContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: Self.maximumBodySize)
        let provider = Self.classify(request)
        let noDelay = try? await context.channel.getOption(ChannelOptions.tcpOption(.tcp_nodelay)).get()
        state.record(
            FakeProvider.RecordedRequest(
                method: request.method.rawValue,
                path: request.uri.path,
                query: request.uri.query,
                // HTTP/1.1's Host arrives as the request's authority: recorded as the header it was on the wire.
                headers: (request.head.authority.map { [.init(name: "host", value: $0)] } ?? [])
                    + request.headers.map { .init(name: $0.name.rawName, value: $0.value) },
                body: Array(body.readableBytesView),
                provider: provider,
                connectionNoDelay: noDelay.map { $0 != 0 }
            )
        )
        let call = FakeProviderCall(request: request, body: body, configuration: state.configuration)
        switch provider {
        case .openAI: return try await FakeOpenAI.respond(to: call, state: state)
        case .anthropic: return try await FakeAnthropic.respond(to: call, state: state)
        case .gemini: return try await FakeGemini.respond(to: call, state: state)
        }
    }

    /// Which provider's wire format a request is answered in.
    static func classify(_ request: Request) -> FakeProvider.Provider {
        let path = request.uri.path
        if path.hasPrefix("/v1beta/") || path == "/v1beta" { return .gemini }
        if path.hasPrefix("/v1/messages") { return .anthropic }
        if request.headers[FakeHeader.xAPIKey] != nil || request.headers[FakeHeader.anthropicVersion] != nil {
            return .anthropic
        }
        return .openAI
    }
}

/// Header names the fake reads or writes.
enum FakeHeader {
    static let xAPIKey = HTTPField.Name("x-api-key")!
    static let anthropicVersion = HTTPField.Name("anthropic-version")!
    static let googAPIKey = HTTPField.Name("x-goog-api-key")!
    static let requestID = HTTPField.Name("request-id")!
    static let xRequestID = HTTPField.Name("x-request-id")!
    static let retryAfter = HTTPField.Name("retry-after")!
}

/// One request as seen by a provider module: head, body bytes and the configuration snapshot.
struct FakeProviderCall: Sendable {
    let request: Request
    let body: ByteBuffer
    let configuration: FakeProvider.Configuration

    var method: HTTPRequest.Method { request.method }
    var path: String { request.uri.path }

    /// The body parsed as a JSON object, or `nil` when it is not one.
    var jsonObject: [String: Any]? {
        guard body.readableBytes > 0 else { return nil }
        let data = Data(body.readableBytesView)
        return (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    }

    /// Waits for the configured time to first byte.
    func waitForFirstByte() async throws {
        if configuration.firstByteLatency > .zero {
            try await Task.sleep(for: configuration.firstByteLatency)
        }
    }
}
