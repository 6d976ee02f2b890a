extension FakeProvider {
    /// The LLM provider whose wire format a request is answered in.
    public enum Provider: String, Sendable, Hashable, CaseIterable {
        /// OpenAI (`Authorization: Bearer`, `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`).
        case openAI
        /// Anthropic (`x-api-key` + `anthropic-version`, `/v1/messages`, `/v1/models`).
        case anthropic
        /// Google Gemini (`x-goog-api-key` or `?key=`, `/v1beta/models`).
        case gemini
    }

    /// Token counts the fake reports in every `usage` object.
    ///
    /// The numbers are reported as configured, without arithmetic, except OpenAI's
    /// `total_tokens`, which is `inputTokens + outputTokens`.
    public struct Usage: Sendable, Hashable {
        /// OpenAI `prompt_tokens`, Anthropic `input_tokens`, embeddings `prompt_tokens`.
        public var inputTokens: Int
        /// OpenAI `completion_tokens`, Anthropic `output_tokens`.
        public var outputTokens: Int
        /// OpenAI `prompt_tokens_details.cached_tokens`.
        public var cachedInputTokens: Int
        /// OpenAI `completion_tokens_details.reasoning_tokens`.
        public var reasoningTokens: Int
        /// Anthropic `cache_creation_input_tokens`.
        public var cacheCreationInputTokens: Int
        /// Anthropic `cache_read_input_tokens`.
        public var cacheReadInputTokens: Int

        /// Creates a usage record; every count defaults to a small distinct number so tests can tell them apart.
        public init(
            inputTokens: Int = 11,
            outputTokens: Int = 7,
            cachedInputTokens: Int = 3,
            reasoningTokens: Int = 2,
            cacheCreationInputTokens: Int = 5,
            cacheReadInputTokens: Int = 4
        ) {
            self.inputTokens = inputTokens
            self.outputTokens = outputTokens
            self.cachedInputTokens = cachedInputTokens
            self.reasoningTokens = reasoningTokens
            self.cacheCreationInputTokens = cacheCreationInputTokens
            self.cacheReadInputTokens = cacheReadInputTokens
        }
    }

    /// An injected failure: matching requests get `status` with the provider's own error body.
    ///
    /// Authentication is checked first, so a wrong key still gets the provider's 401/400.
    public struct Failure: Sendable, Hashable {
        /// HTTP status to answer with, e.g. 429, 500, 503, 529.
        public var status: Int
        /// Error message placed in the provider's error body.
        public var message: String
        /// How many more requests fail; `nil` means every request until the failure is cleared.
        public var remaining: Int?
        /// Which providers' requests fail; `nil` means all of them.
        public var providers: Set<Provider>?
        /// Value of a `retry-after` response header, if any.
        public var retryAfter: String?

        /// Creates a failure answering `status` for `remaining` requests (all when `nil`).
        public init(
            status: Int,
            message: String = "Injected failure from the fake provider.",
            remaining: Int? = nil,
            providers: Set<Provider>? = nil,
            retryAfter: String? = nil
        ) {
            self.status = status
            self.message = message
            self.remaining = remaining
            self.providers = providers
            self.retryAfter = retryAfter
        }
    }

    /// Behaviour of a ``FakeProvider``; change it at runtime with ``FakeProvider/update(_:)``.
    public struct Configuration: Sendable {
        /// The OpenAI key the default configuration accepts.
        public static let defaultOpenAIKey = "sk-fake-openai-key"
        /// The Anthropic key the default configuration accepts.
        public static let defaultAnthropicKey = "sk-ant-fake-anthropic-key"
        /// The Gemini key the default configuration accepts.
        public static let defaultGeminiKey = "fake-gemini-key"

        /// Keys accepted as `Authorization: Bearer KEY`.
        public var openAIKeys: Set<String>
        /// Keys accepted as `x-api-key: KEY`.
        public var anthropicKeys: Set<String>
        /// Keys accepted as `x-goog-api-key: KEY` or `?key=KEY`.
        public var geminiKeys: Set<String>
        /// Usage numbers reported by completions, messages and embeddings.
        public var usage: Usage
        /// Assistant text returned; a stream splits it across ``streamChunkCount`` deltas.
        public var responseText: String
        /// Number of content deltas in a streamed answer (at least 1).
        public var streamChunkCount: Int
        /// Delay before the response head is sent.
        public var firstByteLatency: Duration
        /// Delay between consecutive streamed events.
        public var interChunkLatency: Duration
        /// Failure to inject, or `nil` to answer normally.
        public var failure: Failure?
        /// When set, streams are cut by closing the connection after this many SSE events
        /// (every `data:` frame counts, including role, usage and `[DONE]` frames);
        /// if the stream has fewer events, all are sent and the connection still closes
        /// without the terminating chunk. Non-streaming requests are unaffected.
        /// The close may overtake the last events on a busy machine (the server drops writes still buffered when
        /// its connection closes): a client gets at most this many, then an error.
        public var cutStreamAfterEvents: Int?
        /// Model ids listed by OpenAI's `GET /v1/models`.
        public var openAIModels: [String]
        /// Model ids listed by Anthropic's `GET /v1/models`.
        public var anthropicModels: [String]
        /// Model ids (without the `models/` prefix) listed by Gemini's `GET /v1beta/models`.
        public var geminiModels: [String]
        /// Length of each embedding vector, unless the request asks for `dimensions`.
        public var embeddingDimensions: Int

        /// Creates a configuration; the defaults accept the `default…Key` keys and answer instantly.
        public init(
            openAIKeys: Set<String> = [Self.defaultOpenAIKey],
            anthropicKeys: Set<String> = [Self.defaultAnthropicKey],
            geminiKeys: Set<String> = [Self.defaultGeminiKey],
            usage: Usage = Usage(),
            responseText: String = "Hello from the fake provider, streamed in parts.",
            streamChunkCount: Int = 4,
            firstByteLatency: Duration = .zero,
            interChunkLatency: Duration = .zero,
            failure: Failure? = nil,
            cutStreamAfterEvents: Int? = nil,
            openAIModels: [String] = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"],
            anthropicModels: [String] = ["claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"],
            geminiModels: [String] = ["gemini-2.5-flash", "gemini-2.5-pro"],
            embeddingDimensions: Int = 8
        ) {
            self.openAIKeys = openAIKeys
            self.anthropicKeys = anthropicKeys
            self.geminiKeys = geminiKeys
            self.usage = usage
            self.responseText = responseText
            self.streamChunkCount = streamChunkCount
            self.firstByteLatency = firstByteLatency
            self.interChunkLatency = interChunkLatency
            self.failure = failure
            self.cutStreamAfterEvents = cutStreamAfterEvents
            self.openAIModels = openAIModels
            self.anthropicModels = anthropicModels
            self.geminiModels = geminiModels
            self.embeddingDimensions = embeddingDimensions
        }
    }
}
