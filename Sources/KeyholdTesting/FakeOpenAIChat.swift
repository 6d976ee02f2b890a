/// The JSON of one OpenAI chat completion, whole (`chat.completion`) or as `chat.completion.chunk` events.
struct FakeOpenAIChat {
    let id: String
    let created: Int
    let model: String
    let configuration: FakeProvider.Configuration
    /// `stop`, or `length` when the request's maximum stopped the completion.
    var finishReason = "stop"

    private static let fingerprint = "fp_fake0001"

    var usageObject: FakeJSON {
        let usage = configuration.usage
        return .object([
            ("prompt_tokens", .int(usage.inputTokens)),
            ("completion_tokens", .int(usage.outputTokens)),
            ("total_tokens", .int(usage.inputTokens + usage.outputTokens)),
            ("prompt_tokens_details", .object([("cached_tokens", .int(usage.cachedInputTokens)), ("audio_tokens", .int(0))])),
            (
                "completion_tokens_details",
                .object([
                    ("reasoning_tokens", .int(usage.reasoningTokens)),
                    ("audio_tokens", .int(0)),
                    ("accepted_prediction_tokens", .int(0)),
                    ("rejected_prediction_tokens", .int(0)),
                ])
            ),
        ])
    }

    var completionObject: FakeJSON {
        .object([
            ("id", .string(id)),
            ("object", .string("chat.completion")),
            ("created", .int(created)),
            ("model", .string(model)),
            (
                "choices",
                .array([
                    .object([
                        ("index", .int(0)),
                        (
                            "message",
                            .object([
                                ("role", .string("assistant")),
                                ("content", .string(configuration.responseText)),
                                ("refusal", .null),
                                ("annotations", .array([])),
                            ])
                        ),
                        ("logprobs", .null),
                        ("finish_reason", .string(finishReason)),
                    ])
                ])
            ),
            ("usage", usageObject),
            ("service_tier", .string("default")),
            ("system_fingerprint", .string(Self.fingerprint)),
        ])
    }

    /// `data: {chunk}` frames: role, one per content piece, finish, optional usage, then `[DONE]`.
    func streamEvents(includeUsage: Bool) -> [String] {
        var events = [
            chunk(delta: .object([("role", .string("assistant")), ("content", .string("")), ("refusal", .null)]), includeUsage: includeUsage)
        ]
        for piece in FakeResponses.split(configuration.responseText, into: configuration.streamChunkCount) {
            events.append(chunk(delta: .object([("content", .string(piece))]), includeUsage: includeUsage))
        }
        events.append(chunk(delta: .object([]), finishReason: finishReason, includeUsage: includeUsage))
        if includeUsage {
            events.append(frame(envelope(choices: .array([]), usage: usageObject)))
        }
        events.append("data: [DONE]\n\n")
        return events
    }

    private func chunk(delta: FakeJSON, finishReason: String? = nil, includeUsage: Bool) -> String {
        let choice = FakeJSON.object([
            ("index", .int(0)),
            ("delta", delta),
            ("logprobs", .null),
            ("finish_reason", finishReason.map(FakeJSON.string) ?? .null),
        ])
        return frame(envelope(choices: .array([choice]), usage: includeUsage ? .null : nil))
    }

    private func envelope(choices: FakeJSON, usage: FakeJSON?) -> FakeJSON {
        var members: [(String, FakeJSON)] = [
            ("id", .string(id)),
            ("object", .string("chat.completion.chunk")),
            ("created", .int(created)),
            ("model", .string(model)),
            ("service_tier", .string("default")),
            ("system_fingerprint", .string(Self.fingerprint)),
            ("choices", choices),
        ]
        if let usage { members.append(("usage", usage)) }
        return .object(members)
    }

    private func frame(_ json: FakeJSON) -> String {
        "data: " + json.serialized + "\n\n"
    }
}
