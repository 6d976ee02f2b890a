import Foundation

/// The token counts a provider's answer may state: none negative, none past a billion (no call comes near). A usage
/// object with another count is not taken as a report (the call is charged its reservation): a relay a tenant runs
/// behind its key's base URL cannot credit itself tokens, nor make a cost overflow.
enum ReportedTokens {
    static let plausible = 0...1_000_000_000

    static func arePlausible(_ counts: Int?...) -> Bool { counts.allSatisfy { $0.map(plausible.contains) ?? true } }
}

/// OpenAI's `usage` object (chat completions, their final stream chunk, embeddings).
struct OpenAIUsage: Decodable, Sendable {
    struct PromptDetails: Decodable, Sendable {
        var cachedTokens: Int?
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }
    struct CompletionDetails: Decodable, Sendable {
        var reasoningTokens: Int?
        enum CodingKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
    }
    var promptTokens: Int?
    var completionTokens: Int?
    var promptTokensDetails: PromptDetails?
    var completionTokensDetails: CompletionDetails?
    enum CodingKeys: String, CodingKey {
        case promptTokens = "prompt_tokens"
        case completionTokens = "completion_tokens"
        case promptTokensDetails = "prompt_tokens_details"
        case completionTokensDetails = "completion_tokens_details"
    }

    var isPlausible: Bool {
        ReportedTokens.arePlausible(promptTokens, completionTokens, promptTokensDetails?.cachedTokens, completionTokensDetails?.reasoningTokens)
    }
}

/// The Responses API's `usage` object (a response, and the response of `response.completed`, `.incomplete`, `.failed`).
struct ResponsesUsage: Decodable, Sendable {
    struct InputDetails: Decodable, Sendable {
        var cachedTokens: Int?
        enum CodingKeys: String, CodingKey { case cachedTokens = "cached_tokens" }
    }
    struct OutputDetails: Decodable, Sendable {
        var reasoningTokens: Int?
        enum CodingKeys: String, CodingKey { case reasoningTokens = "reasoning_tokens" }
    }
    var inputTokens: Int?
    var outputTokens: Int?
    var inputTokensDetails: InputDetails?
    var outputTokensDetails: OutputDetails?
    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case inputTokensDetails = "input_tokens_details"
        case outputTokensDetails = "output_tokens_details"
    }

    var isPlausible: Bool {
        ReportedTokens.arePlausible(inputTokens, outputTokens, inputTokensDetails?.cachedTokens, outputTokensDetails?.reasoningTokens)
    }
}

/// The id and usage of the response a Responses API stream event carries (`response.completed`, `.incomplete`,
/// `.failed`). The event also carries the whole output; a scan finds the two fields and only they are decoded.
struct ResponsesEventUsage: Sendable {
    var id: String?
    var usage: ResponsesUsage

    /// Reads an event's data; nil when it has no response with a usage object.
    init?(eventData data: [UInt8]) {
        guard let response = JSONMembers.value(at: ["response"], in: data), let object = JSONMembers(of: data, from: response.lowerBound),
            let usage = object.value(of: "usage"), data[usage.lowerBound] == UInt8(ascii: "{"),
            let decoded = try? JSONDecoder().decode(ResponsesUsage.self, from: Data(data[usage])), decoded.isPlausible
        else { return nil }
        self.usage = decoded
        id = object.value(of: "id").flatMap { try? JSONDecoder().decode(String.self, from: Data(data[$0])) }
    }
}

/// Anthropic's `usage` object (a message, `message_start`'s message, `message_delta`).
struct AnthropicUsage: Decodable, Sendable {
    var inputTokens: Int?
    var outputTokens: Int?
    var cacheCreationInputTokens: Int?
    var cacheReadInputTokens: Int?
    enum CodingKeys: String, CodingKey {
        case inputTokens = "input_tokens"
        case outputTokens = "output_tokens"
        case cacheCreationInputTokens = "cache_creation_input_tokens"
        case cacheReadInputTokens = "cache_read_input_tokens"
    }

    var isPlausible: Bool { ReportedTokens.arePlausible(inputTokens, outputTokens, cacheCreationInputTokens, cacheReadInputTokens) }
}

/// A JSON value whose content does not matter (only whether it is there).
struct IgnoredJSON: Decodable, Sendable {
    init(from decoder: any Decoder) throws {}
}

/// The parts of a provider's answer (or of one stream event) that carry usage; every other field is skipped.
struct UsageCarrier: Decodable, Sendable {
    struct Message: Decodable, Sendable {
        var usage: AnthropicUsage?
    }
    /// Anthropic's event type (`message_start`, `message_delta`, …).
    var type: String?
    /// OpenAI: an empty list marks the usage-only final chunk of a stream.
    var choices: [IgnoredJSON]?
    /// Anthropic `message_start`: the message with its first usage.
    var message: Message?
    var openAIUsage: OpenAIUsage?
    var anthropicUsage: AnthropicUsage?
    /// A Responses API answer: its id and usage.
    var id: String?
    var responsesUsage: ResponsesUsage?

    enum CodingKeys: String, CodingKey {
        case type, choices, message, usage, id
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        type = try? container.decodeIfPresent(String.self, forKey: .type)
        choices = try? container.decodeIfPresent([IgnoredJSON].self, forKey: .choices)
        message = try? container.decodeIfPresent(Message.self, forKey: .message)
        if message?.usage?.isPlausible == false { message?.usage = nil }
        openAIUsage = (try? container.decodeIfPresent(OpenAIUsage.self, forKey: .usage)).flatMap { $0?.isPlausible == true ? $0 : nil }
        anthropicUsage = (try? container.decodeIfPresent(AnthropicUsage.self, forKey: .usage)).flatMap { $0?.isPlausible == true ? $0 : nil }
        responsesUsage = (try? container.decodeIfPresent(ResponsesUsage.self, forKey: .usage)).flatMap { $0?.isPlausible == true ? $0 : nil }
        id = try? container.decodeIfPresent(String.self, forKey: .id)
    }

    /// Decodes `bytes`, or nil when they are not a JSON object.
    static func decode(_ bytes: some Collection<UInt8>) -> UsageCarrier? {
        try? JSONDecoder().decode(UsageCarrier.self, from: Data(bytes))
    }
}

/// The fields of a request body the proxy acts on; every other field passes through untouched.
struct RequestFields: Decodable, Sendable {
    struct StreamOptions: Decodable, Sendable {
        var includeUsage: Bool?
        enum CodingKeys: String, CodingKey { case includeUsage = "include_usage" }
    }
    var model: String?
    var maxTokens: Int?
    var maxCompletionTokens: Int?
    /// The Responses API's output maximum.
    var maxOutputTokens: Int?
    var stream: Bool?
    var streamOptions: StreamOptions?
    /// Responses API: run after the request returns (not metered here: refused).
    var background: Bool?
    /// Responses API: the response whose conversation this one continues (the tenant's own only).
    var previousResponseID: String?
    /// OpenAI: how many completions (choices) to make.
    var n: Int?

    enum CodingKeys: String, CodingKey {
        case model
        case maxTokens = "max_tokens"
        case maxCompletionTokens = "max_completion_tokens"
        case maxOutputTokens = "max_output_tokens"
        case stream
        case streamOptions = "stream_options"
        case background
        case previousResponseID = "previous_response_id"
        case n
    }

    /// The output maximum the request states, whichever field it used.
    /// The output maximums the request stated (a provider that honours either of two may take the larger).
    var statedOutputMaximums: [Int] { [maxTokens, maxCompletionTokens, maxOutputTokens].compactMap(\.self) }

    /// The fields of the output maximum the request sent (a clamp lowers each).
    var outputFieldsSent: [String] {
        [(maxTokens, "max_tokens"), (maxCompletionTokens, "max_completion_tokens"), (maxOutputTokens, "max_output_tokens")]
            .compactMap { $0.0 == nil ? nil : $0.1 }
    }

    /// A body that is not a JSON object, or whose fields have the wrong type, with a message saying which.
    struct Invalid: Error {
        var message: String
    }

    static func decode(_ bytes: some Collection<UInt8>) throws(Invalid) -> RequestFields {
        do {
            return try JSONDecoder().decode(RequestFields.self, from: Data(bytes))
        } catch DecodingError.typeMismatch(_, let context) where !context.codingPath.isEmpty {
            throw Invalid(message: "'\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch {
            throw Invalid(message: "the request body is not a JSON object")
        }
    }
}
