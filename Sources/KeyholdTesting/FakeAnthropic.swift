import HTTPTypes
import Hummingbird

/// Anthropic wire format: `/v1/models`, `/v1/messages`.
enum FakeAnthropic {
    static func respond(to call: FakeProviderCall, state: FakeProviderState) async throws -> Response {
        if let denied = authenticate(call) { return denied }
        if let failure = state.takeFailure(for: .anthropic) {
            var headers: HTTPFields = [:]
            if let retryAfter = failure.retryAfter { headers[FakeHeader.retryAfter] = retryAfter }
            return error(status: failure.status, message: failure.message, extraHeaders: headers)
        }
        try await call.waitForFirstByte()
        switch (call.method, call.path) {
        case (.get, "/v1/models"): return models(call)
        case (.post, "/v1/messages"): return message(call)
        case (.post, "/v1/messages/count_tokens"):
            return FakeResponses.json(.object([("input_tokens", .int(call.configuration.usage.inputTokens))]))
        default: return error(status: 404, message: "Not Found")
        }
    }

    /// `nil` when the key is accepted and `anthropic-version` is present, else Anthropic's error. The key comes as
    /// `x-api-key` or, as the official Python SDK sends it since 2.x, `Authorization: Bearer`.
    static func authenticate(_ call: FakeProviderCall) -> Response? {
        let bearer = call.request.headers[.authorization].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let key = call.request.headers[FakeHeader.xAPIKey] ?? bearer else {
            return error(status: 401, message: "x-api-key header is required")
        }
        guard call.configuration.anthropicKeys.contains(key) else {
            return error(status: 401, message: "invalid x-api-key")
        }
        guard call.request.headers[FakeHeader.anthropicVersion] != nil else {
            return error(status: 400, message: "anthropic-version: header is required")
        }
        return nil
    }

    /// Anthropic's error body `{"type":"error","error":{"type","message"},"request_id"}`.
    static func error(status: Int, message: String, extraHeaders: HTTPFields = [:]) -> Response {
        let type =
            switch status {
            case 400: "invalid_request_error"
            case 401: "authentication_error"
            case 402: "billing_error"
            case 403: "permission_error"
            case 404: "not_found_error"
            case 413: "request_too_large"
            case 429: "rate_limit_error"
            case 504: "timeout_error"
            case 529: "overloaded_error"
            case 500...: "api_error"
            default: "invalid_request_error"
            }
        let requestID = "req_011" + FakeResponses.randomID(length: 21)
        var headers = extraHeaders
        headers[FakeHeader.requestID] = requestID
        return FakeResponses.json(
            .object([
                ("type", .string("error")),
                ("error", .object([("type", .string(type)), ("message", .string(message))])),
                ("request_id", .string(requestID)),
            ]),
            status: status,
            extraHeaders: headers
        )
    }

    private static func models(_ call: FakeProviderCall) -> Response {
        let ids = call.configuration.anthropicModels
        let data = ids.map { id in
            FakeJSON.object([
                ("type", .string("model")),
                ("id", .string(id)),
                ("display_name", .string(id)),
                ("created_at", .string("2025-01-01T00:00:00Z")),
            ])
        }
        return FakeResponses.json(
            .object([
                ("data", .array(data)),
                ("has_more", .bool(false)),
                ("first_id", ids.first.map(FakeJSON.string) ?? .null),
                ("last_id", ids.last.map(FakeJSON.string) ?? .null),
            ])
        )
    }

    private static func message(_ call: FakeProviderCall) -> Response {
        guard let body = call.jsonObject else {
            return error(status: 400, message: "There was an error parsing the body of your request.")
        }
        // The provider stops at max_tokens: the configured output is cut to it, with its own stop reason.
        var configuration = call.configuration
        let stopped = (body["max_tokens"] as? Int).map { $0 < configuration.usage.outputTokens } ?? false
        if stopped, let maximum = body["max_tokens"] as? Int { configuration.usage.outputTokens = maximum }
        var message = FakeAnthropicMessage(
            id: "msg_01" + FakeResponses.randomID(length: 22),
            model: body["model"] as? String ?? call.configuration.anthropicModels.first ?? "claude-sonnet-4-5",
            configuration: configuration
        )
        if stopped { message.stopReason = "max_tokens" }
        guard body["stream"] as? Bool == true else {
            return FakeResponses.json(message.messageObject)
        }
        return FakeResponses.eventStream(message.streamEvents(), configuration: configuration)
    }
}
