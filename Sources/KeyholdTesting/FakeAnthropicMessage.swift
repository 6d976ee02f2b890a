/// The JSON of one Anthropic message, whole or as the SSE event sequence of a stream.
struct FakeAnthropicMessage {
    let id: String
    let model: String
    let configuration: FakeProvider.Configuration
    /// `end_turn`, or `max_tokens` when the request's `max_tokens` stopped the message (the configured output cut to it).
    var stopReason = "end_turn"

    private func usage(outputTokens: Int) -> FakeJSON {
        let usage = configuration.usage
        return .object([
            ("input_tokens", .int(usage.inputTokens)),
            ("cache_creation_input_tokens", .int(usage.cacheCreationInputTokens)),
            ("cache_read_input_tokens", .int(usage.cacheReadInputTokens)),
            ("output_tokens", .int(outputTokens)),
        ])
    }

    private func message(content: FakeJSON, stopReason: String?, outputTokens: Int) -> FakeJSON {
        .object([
            ("id", .string(id)),
            ("type", .string("message")),
            ("role", .string("assistant")),
            ("model", .string(model)),
            ("content", content),
            ("stop_reason", stopReason.map(FakeJSON.string) ?? .null),
            ("stop_sequence", .null),
            ("usage", usage(outputTokens: outputTokens)),
        ])
    }

    var messageObject: FakeJSON {
        message(
            content: .array([.object([("type", .string("text")), ("text", .string(configuration.responseText))])]),
            stopReason: stopReason,
            outputTokens: configuration.usage.outputTokens
        )
    }

    /// message_start, content_block_start, ping, text deltas, content_block_stop, message_delta, message_stop.
    func streamEvents() -> [String] {
        var events = [
            event("message_start", [("message", message(content: .array([]), stopReason: nil, outputTokens: 1))]),
            event("content_block_start", [("index", .int(0)), ("content_block", .object([("type", .string("text")), ("text", .string(""))]))]),
            event("ping", []),
        ]
        for piece in FakeResponses.split(configuration.responseText, into: configuration.streamChunkCount) {
            events.append(
                event("content_block_delta", [("index", .int(0)), ("delta", .object([("type", .string("text_delta")), ("text", .string(piece))]))])
            )
        }
        events.append(event("content_block_stop", [("index", .int(0))]))
        events.append(
            event(
                "message_delta",
                [
                    ("delta", .object([("stop_reason", .string(stopReason)), ("stop_sequence", .null)])),
                    ("usage", .object([("output_tokens", .int(configuration.usage.outputTokens))])),
                ]
            )
        )
        events.append(event("message_stop", []))
        return events
    }

    private func event(_ type: String, _ members: [(String, FakeJSON)]) -> String {
        "event: \(type)\ndata: " + FakeJSON.object([("type", .string(type))] + members).serialized + "\n\n"
    }
}
