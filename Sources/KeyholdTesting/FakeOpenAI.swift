import HTTPTypes
import Hummingbird

/// OpenAI wire format: `/v1/models`, `/v1/chat/completions`, `/v1/embeddings`, and the Responses API.
enum FakeOpenAI {
    static func respond(to call: FakeProviderCall, state: FakeProviderState) async throws -> Response {
        if let denied = authenticate(call) { return denied }
        if let failure = state.takeFailure(for: .openAI) {
            var headers: HTTPFields = [:]
            if let retryAfter = failure.retryAfter { headers[FakeHeader.retryAfter] = retryAfter }
            return error(status: failure.status, message: failure.message, extraHeaders: headers)
        }
        try await call.waitForFirstByte()
        switch (call.method, call.path) {
        case (.get, "/v1/models"): return models(call)
        case (.post, "/v1/chat/completions"): return chatCompletion(call)
        case (.post, "/v1/embeddings"): return FakeOpenAIEmbeddings.respond(to: call)
        case (.post, "/v1/responses"): return FakeOpenAIResponses.create(call, state: state)
        case (.post, "/v1/responses/input_tokens"): return FakeOpenAIResponses.inputTokens(call)
        case (_, let path) where path.hasPrefix("/v1/responses/"): return FakeOpenAIResponses.stored(call, state: state)
        case (.get, "/v1/echo/headers"): return FakeEcho.headers(call)
        case (.post, "/v1/echo/stream"): return FakeEcho.stream(call)
        default:
            return error(
                status: 404,
                message: "Invalid URL (\(call.method.rawValue) \(call.path))",
                type: "invalid_request_error"
            )
        }
    }

    /// `nil` when `Authorization: Bearer KEY` carries an accepted key, else OpenAI's 401.
    static func authenticate(_ call: FakeProviderCall) -> Response? {
        let authorization = call.request.headers[.authorization]
        guard let authorization, authorization.hasPrefix("Bearer "), authorization.count > 7 else {
            return error(
                status: 401,
                message: "You didn't provide an API key. You need to provide your API key in an Authorization header "
                    + "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank "
                    + "username) if you're accessing the API from your browser and are prompted for a username and "
                    + "password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                type: "invalid_request_error"
            )
        }
        let key = String(authorization.dropFirst(7))
        if call.configuration.openAIKeys.contains(key) { return nil }
        return error(
            status: 401,
            message: "Incorrect API key provided: \(redact(key)). You can find your API key at "
                + "https://platform.openai.com/account/api-keys.",
            type: "invalid_request_error",
            code: "invalid_api_key"
        )
    }

    /// OpenAI's error body `{"error":{"message","type","param","code"}}`.
    static func error(
        status: Int,
        message: String,
        type: String? = nil,
        code: String? = nil,
        extraHeaders: HTTPFields = [:]
    ) -> Response {
        let (defaultType, defaultCode): (String, String?) =
            switch status {
            case 429: ("requests", "rate_limit_exceeded")
            case 500...: ("server_error", nil)
            default: ("invalid_request_error", nil)
            }
        var headers = extraHeaders
        headers[FakeHeader.xRequestID] = "req_" + FakeResponses.randomID(length: 32)
        return FakeResponses.json(
            .object([
                (
                    "error",
                    .object([
                        ("message", .string(message)),
                        ("type", .string(type ?? defaultType)),
                        ("param", .null),
                        ("code", (code ?? defaultCode).map(FakeJSON.string) ?? .null),
                    ])
                )
            ]),
            status: status,
            extraHeaders: headers
        )
    }

    private static func redact(_ key: String) -> String {
        key.count <= 8 ? key : String(key.prefix(3)) + "*****" + String(key.suffix(4))
    }

    private static func models(_ call: FakeProviderCall) -> Response {
        let data = call.configuration.openAIModels.map { id in
            FakeJSON.object([
                ("id", .string(id)),
                ("object", .string("model")),
                ("created", .int(1_686_935_002)),
                ("owned_by", .string("system")),
            ])
        }
        return FakeResponses.json(.object([("object", .string("list")), ("data", .array(data))]))
    }

    private static func chatCompletion(_ call: FakeProviderCall) -> Response {
        guard let body = call.jsonObject else {
            return error(
                status: 400,
                message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
                    + "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
                    + "valid JSON. If you have trouble figuring out how to fix this, please contact us through our "
                    + "help center at help.openai.com.)"
            )
        }
        let model = body["model"] as? String ?? call.configuration.openAIModels.first ?? "gpt-4o-mini"
        // The provider stops at the request's maximum: the configured output is cut to it, finish_reason "length".
        var configuration = call.configuration
        let maximum = body["max_completion_tokens"] as? Int ?? body["max_tokens"] as? Int
        let stopped = maximum.map { $0 < configuration.usage.outputTokens } ?? false
        if stopped, let maximum { configuration.usage.outputTokens = maximum }
        var completion = FakeOpenAIChat(
            id: "chatcmpl-" + FakeResponses.randomID(length: 29),
            created: FakeResponses.unixTime(),
            model: model,
            configuration: configuration
        )
        if stopped { completion.finishReason = "length" }
        guard body["stream"] as? Bool == true else {
            return FakeResponses.json(completion.completionObject)
        }
        let options = body["stream_options"] as? [String: Any]
        let includeUsage = options?["include_usage"] as? Bool == true
        return FakeResponses.eventStream(completion.streamEvents(includeUsage: includeUsage), configuration: call.configuration)
    }
}
