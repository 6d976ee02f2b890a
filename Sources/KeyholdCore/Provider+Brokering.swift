/// How a brokered key of a provider reaches the provider: the agent calls the listener inside its sandbox with a
/// placeholder in the provider's own auth header, and the daemon forwards the request with the real key there.
public struct Brokering: Sendable, Equatable {
    /// What the agent's base URL variable adds to the listener's address: `/v1` for OpenAI's clients (which append
    /// `/chat/completions` to it), nothing for Anthropic's (which append `/v1/messages`).
    public var agentBasePath: String
    /// The header the key travels in upstream.
    public var header: String
    /// The provider's auth headers a placeholder is taken from (Anthropic's clients send `x-api-key`, or `authorization:
    /// Bearer` when given a token); a placeholder anywhere else is never replaced.
    public var acceptedHeaders: Set<String>
    /// What precedes the key in that header (`Bearer `).
    public var valuePrefix: String
    /// Placeholders begin like the provider's keys, so that clients that check a key's shape accept them.
    public var placeholderPrefix: String
}

extension Provider {
    /// How this provider's keys are brokered; nil when its clients cannot be served by a placeholder.
    public var brokering: Brokering? {
        switch self {
        case .openai, .openaiCompatible:
            Brokering(
                agentBasePath: "/v1", header: "authorization", acceptedHeaders: ["authorization"], valuePrefix: "Bearer ",
                placeholderPrefix: "sk-keyhold-")
        case .anthropic:
            Brokering(
                agentBasePath: "", header: "x-api-key", acceptedHeaders: ["x-api-key", "authorization"], valuePrefix: "",
                placeholderPrefix: "sk-ant-keyhold-")
        case .google: nil
        }
    }

    /// Why `brokering` is nil, for the plan loader's error.
    public var whyNotBrokered: String {
        "its clients may send the key in the URL (?key=), and a placeholder is never replaced in a URL"
    }
}
