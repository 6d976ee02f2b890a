import Foundation
import Hummingbird

/// OpenAI's Responses API as the provider documents it: `POST /v1/responses` (a `response` object, or typed events
/// from `response.created` to `response.completed`, or `response.incomplete` when `max_output_tokens` stops it),
/// the stored responses (`GET`/`DELETE /v1/responses/{id}`, `/cancel`, `/input_items`), and
/// `POST /v1/responses/input_tokens`.
enum FakeOpenAIResponses {
    static func create(_ call: FakeProviderCall, state: FakeProviderState) -> Response {
        guard let body = call.jsonObject else {
            return FakeOpenAI.error(status: 400, message: "We could not parse the JSON body of your request.")
        }
        if let previous = body["previous_response_id"] as? String, state.storedResponse(previous) == nil {
            return notFound(previous, previous: true)
        }
        let configuration = call.configuration
        let maximum = body["max_output_tokens"] as? Int
        let output = min(configuration.usage.outputTokens, maximum ?? Int.max)
        let incomplete = output < configuration.usage.outputTokens
        var text = configuration.responseText
        if incomplete { text = String(text.prefix(max(1, text.count * output / max(1, configuration.usage.outputTokens)))) }
        let response = FakeOpenAIResponse(
            id: "resp_" + FakeResponses.randomID(length: 48), itemID: "msg_" + FakeResponses.randomID(length: 48),
            createdAt: FakeResponses.unixTime(), model: body["model"] as? String ?? "gpt-5-mini", text: text, outputTokens: output,
            maximum: maximum, previous: body["previous_response_id"] as? String, configuration: configuration)
        let final = response.object(status: incomplete ? "incomplete" : "completed", withOutput: true)
        if body["store"] as? Bool != false { state.store(response: final, id: response.id) }
        guard body["stream"] as? Bool == true else { return FakeResponses.json(final) }
        return FakeResponses.eventStream(response.events(incomplete: incomplete), configuration: configuration)
    }

    static func inputTokens(_ call: FakeProviderCall) -> Response {
        FakeResponses.json(.object([("object", .string("response.input_tokens")), ("input_tokens", .int(call.configuration.usage.inputTokens))]))
    }

    /// `GET|DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`, `GET /v1/responses/{id}/input_items`.
    static func stored(_ call: FakeProviderCall, state: FakeProviderState) -> Response {
        let parts = call.path.dropFirst("/v1/responses/".count).split(separator: "/").map(String.init)
        guard let id = parts.first, let stored = state.storedResponse(id) else {
            return notFound(parts.first ?? "", previous: false)
        }
        switch (call.method, parts.count > 1 ? parts[1] : nil) {
        case (.get, nil): return FakeResponses.json(stored)
        case (.delete, nil):
            _ = state.deleteResponse(id)
            return FakeResponses.json(.object([("id", .string(id)), ("object", .string("response.deleted")), ("deleted", .bool(true))]))
        case (.post, "cancel"):
            return FakeOpenAI.error(status: 400, message: "Cannot cancel a synchronous response.", type: "invalid_request_error")
        case (.get, "input_items"):
            return FakeResponses.json(
                .object([("object", .string("list")), ("data", .array([])), ("first_id", .null), ("last_id", .null), ("has_more", .bool(false))]))
        default:
            return FakeOpenAI.error(status: 404, message: "Invalid URL (\(call.method.rawValue) \(call.path))", type: "invalid_request_error")
        }
    }

    /// OpenAI's answer for an id it does not know: 404 for a stored response, 400 for `previous_response_id`.
    static func notFound(_ id: String, previous: Bool) -> Response {
        guard previous else {
            return FakeOpenAI.error(status: 404, message: "Response with id '\(id)' not found.", type: "invalid_request_error")
        }
        return FakeOpenAI.error(
            status: 400, message: "Previous response with id '\(id)' not found.", type: "invalid_request_error",
            code: "previous_response_not_found")
    }
}

/// One response of the fake Responses API: its object at each stage, and its stream of typed events.
struct FakeOpenAIResponse {
    let id: String
    let itemID: String
    let createdAt: Int
    let model: String
    let text: String
    let outputTokens: Int
    let maximum: Int?
    let previous: String?
    let configuration: FakeProvider.Configuration

    var usage: FakeJSON {
        let usage = configuration.usage
        return .object([
            ("input_tokens", .int(usage.inputTokens)),
            ("input_tokens_details", .object([("cached_tokens", .int(usage.cachedInputTokens))])),
            ("output_tokens", .int(outputTokens)),
            ("output_tokens_details", .object([("reasoning_tokens", .int(min(usage.reasoningTokens, outputTokens)))])),
            ("total_tokens", .int(usage.inputTokens + outputTokens)),
        ])
    }

    func item(status: String, text: String?) -> FakeJSON {
        .object([
            ("id", .string(itemID)), ("type", .string("message")), ("status", .string(status)), ("role", .string("assistant")),
            ("content", .array(text.map { [part($0)] } ?? [])),
        ])
    }

    func part(_ text: String) -> FakeJSON {
        .object([("type", .string("output_text")), ("text", .string(text)), ("annotations", .array([])), ("logprobs", .array([]))])
    }

    func object(status: String, withOutput: Bool) -> FakeJSON {
        let done = status != "in_progress"
        return .object([
            ("id", .string(id)), ("object", .string("response")), ("created_at", .int(createdAt)), ("status", .string(status)),
            ("background", .bool(false)), ("error", .null),
            ("incomplete_details", status == "incomplete" ? .object([("reason", .string("max_output_tokens"))]) : .null),
            ("instructions", .null), ("max_output_tokens", maximum.map(FakeJSON.int) ?? .null), ("model", .string(model)),
            ("output", .array(withOutput ? [item(status: status == "completed" ? "completed" : "incomplete", text: text)] : [])),
            ("parallel_tool_calls", .bool(true)), ("previous_response_id", previous.map(FakeJSON.string) ?? .null),
            ("reasoning", .object([("effort", .null), ("summary", .null)])), ("store", .bool(true)), ("temperature", .float(1)),
            ("text", .object([("format", .object([("type", .string("text"))]))])), ("tool_choice", .string("auto")), ("tools", .array([])),
            ("top_p", .float(1)), ("truncation", .string("disabled")), ("usage", done ? usage : .null), ("user", .null),
            ("metadata", .object([])),
        ])
    }

    /// The typed events of a streamed response, each `event: TYPE` and `data: {...}` with its `sequence_number`.
    func events(incomplete: Bool) -> [String] {
        var events: [(String, [(String, FakeJSON)])] = [
            ("response.created", [("response", object(status: "in_progress", withOutput: false))]),
            ("response.in_progress", [("response", object(status: "in_progress", withOutput: false))]),
            ("response.output_item.added", [("output_index", .int(0)), ("item", item(status: "in_progress", text: nil))]),
            (
                "response.content_part.added",
                [("item_id", .string(itemID)), ("output_index", .int(0)), ("content_index", .int(0)), ("part", part(""))]
            ),
        ]
        for piece in FakeResponses.split(text, into: configuration.streamChunkCount) {
            events.append(
                (
                    "response.output_text.delta",
                    [
                        ("item_id", .string(itemID)), ("output_index", .int(0)), ("content_index", .int(0)), ("delta", .string(piece)),
                        ("logprobs", .array([])),
                    ]
                ))
        }
        let status = incomplete ? "incomplete" : "completed"
        events += [
            (
                "response.output_text.done",
                [
                    ("item_id", .string(itemID)), ("output_index", .int(0)), ("content_index", .int(0)), ("text", .string(text)),
                    ("logprobs", .array([])),
                ]
            ),
            (
                "response.content_part.done",
                [("item_id", .string(itemID)), ("output_index", .int(0)), ("content_index", .int(0)), ("part", part(text))]
            ),
            ("response.output_item.done", [("output_index", .int(0)), ("item", item(status: status, text: text))]),
            ("response.\(status)", [("response", object(status: status, withOutput: true))]),
        ]
        return events.enumerated().map { index, event in
            let data = FakeJSON.object([("type", .string(event.0)), ("sequence_number", .int(index))] + event.1)
            return "event: \(event.0)\ndata: \(data.serialized)\n\n"
        }
    }
}
