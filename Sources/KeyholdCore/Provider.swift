/// An LLM provider whose keys Keyhold stores and injects.
public enum Provider: String, CaseIterable, Codable, Sendable, CustomStringConvertible {
    case anthropic
    case openai
    case google
    /// Any endpoint that speaks OpenAI's API (Groq, Together, Ollama, vLLM...); needs a base URL.
    case openaiCompatible = "openai-compatible"

    public var description: String { rawValue }

    /// Parses a provider name as users type it.
    /// - Throws: `KeyholdError.invalidInput` listing the known providers.
    public static func named(_ name: String) throws -> Provider {
        guard let provider = Provider(rawValue: name.lowercased()) else {
            let known = Provider.allCases.map(\.rawValue).joined(separator: ", ")
            throw KeyholdError.invalidInput("unknown provider '\(name.prefix(40))': use one of \(known)")
        }
        return provider
    }

    /// The environment variables an agent reads this provider's key from (the first is the canonical one).
    public var keyEnvironmentNames: [String] {
        switch self {
        case .anthropic: ["ANTHROPIC_API_KEY"]
        case .openai: ["OPENAI_API_KEY"]
        case .google: ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
        case .openaiCompatible: ["OPENAI_API_KEY"]
        }
    }

    /// The environment variable an agent reads this provider's base URL from.
    public var baseURLEnvironmentName: String {
        switch self {
        case .anthropic: "ANTHROPIC_BASE_URL"
        case .openai, .openaiCompatible: "OPENAI_BASE_URL"
        case .google: "GOOGLE_GEMINI_BASE_URL"
        }
    }

    /// Every environment variable a key of this provider writes: its key's names and its base URL's.
    public var environmentNames: Set<String> { Set(keyEnvironmentNames + [baseURLEnvironmentName]) }

    /// The other provider among `providers` whose key would write one of the same environment variables, if any
    /// (`openai` and `openai-compatible` both write `OPENAI_API_KEY` and `OPENAI_BASE_URL`).
    public func environmentClash(among providers: some Sequence<Provider>) -> (provider: Provider, variables: [String])? {
        for other in providers where other != self {
            let shared = environmentNames.intersection(other.environmentNames)
            if !shared.isEmpty { return (other, shared.sorted()) }
        }
        return nil
    }

    /// The provider's public API; `nil` when the tenant must give one.
    public var defaultBaseURL: String? {
        switch self {
        case .anthropic: "https://api.anthropic.com"
        case .openai: "https://api.openai.com"
        case .google: "https://generativelanguage.googleapis.com"
        case .openaiCompatible: nil
        }
    }

    /// The prefix real keys of this provider start with, when the provider documents one.
    public var keyPrefix: String? {
        switch self {
        case .anthropic: "sk-ant-"
        case .openai: "sk-"
        case .google: "AIza"
        case .openaiCompatible: nil
        }
    }

    /// The cheapest authenticated request that proves a key works: listing models.
    /// - Parameter baseURL: the provider's base URL without a trailing slash.
    /// - Returns: the URL to GET and the headers that carry the key.
    public func validationRequest(baseURL: String, key: String) -> (url: String, headers: [(String, String)]) {
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        switch self {
        case .anthropic:
            return ("\(base)/v1/models?limit=1", [("x-api-key", key), ("anthropic-version", "2023-06-01")])
        case .openai, .openaiCompatible:
            return ("\(base)/v1/models", [("authorization", "Bearer \(key)")])
        case .google:
            return ("\(base)/v1beta/models?pageSize=1", [("x-goog-api-key", key)])
        }
    }
}
