import HTTPTypes
import Hummingbird

/// Google Gemini wire format: `GET /v1beta/models`.
enum FakeGemini {
    static func respond(to call: FakeProviderCall, state: FakeProviderState) async throws -> Response {
        if let denied = authenticate(call) { return denied }
        if let failure = state.takeFailure(for: .gemini) {
            var headers: HTTPFields = [:]
            if let retryAfter = failure.retryAfter { headers[FakeHeader.retryAfter] = retryAfter }
            return error(status: failure.status, message: failure.message, extraHeaders: headers)
        }
        try await call.waitForFirstByte()
        switch (call.method, call.path) {
        case (.get, "/v1beta/models"): return models(call)
        default:
            return error(status: 404, message: "Method not found.")
        }
    }

    /// `nil` for an accepted `x-goog-api-key` (or `?key=`); 403 when missing, 400 `API_KEY_INVALID` when wrong.
    static func authenticate(_ call: FakeProviderCall) -> Response? {
        let key =
            call.request.headers[FakeHeader.googAPIKey]
            ?? call.request.uri.queryParameters.get("key")
        guard let key else {
            return error(
                status: 403,
                message: "Method doesn't allow unregistered callers (callers without established identity). "
                    + "Please use API Key or other form of API consumer identity to call this API."
            )
        }
        guard call.configuration.geminiKeys.contains(key) else {
            return error(
                status: 400,
                message: "API key not valid. Please pass a valid API key.",
                details: [
                    .object([
                        ("@type", .string("type.googleapis.com/google.rpc.ErrorInfo")),
                        ("reason", .string("API_KEY_INVALID")),
                        ("domain", .string("googleapis.com")),
                        ("metadata", .object([("service", .string("generativelanguage.googleapis.com"))])),
                    ])
                ]
            )
        }
        return nil
    }

    /// Google's error body `{"error":{"code","message","status","details"?}}`.
    static func error(status: Int, message: String, details: [FakeJSON] = [], extraHeaders: HTTPFields = [:]) -> Response {
        let statusName =
            switch status {
            case 400: "INVALID_ARGUMENT"
            case 401: "UNAUTHENTICATED"
            case 403: "PERMISSION_DENIED"
            case 404: "NOT_FOUND"
            case 409: "ABORTED"
            case 429: "RESOURCE_EXHAUSTED"
            case 499: "CANCELLED"
            case 501: "UNIMPLEMENTED"
            case 503: "UNAVAILABLE"
            case 504: "DEADLINE_EXCEEDED"
            case 500...: "INTERNAL"
            default: "FAILED_PRECONDITION"
            }
        var members: [(String, FakeJSON)] = [
            ("code", .int(status)),
            ("message", .string(message)),
            ("status", .string(statusName)),
        ]
        if !details.isEmpty { members.append(("details", .array(details))) }
        return FakeResponses.json(.object([("error", .object(members))]), status: status, extraHeaders: extraHeaders)
    }

    private static func models(_ call: FakeProviderCall) -> Response {
        let models = call.configuration.geminiModels.map { id in
            FakeJSON.object([
                ("name", .string("models/" + id)),
                ("version", .string("001")),
                ("displayName", .string(id)),
                ("description", .string("Fake model \(id).")),
                ("inputTokenLimit", .int(1_048_576)),
                ("outputTokenLimit", .int(65_536)),
                ("supportedGenerationMethods", .array([.string("generateContent"), .string("countTokens")])),
            ])
        }
        return FakeResponses.json(.object([("models", .array(models))]))
    }
}
