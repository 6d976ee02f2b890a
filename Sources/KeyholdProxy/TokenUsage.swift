import Foundation
import KeyholdCore

/// Tokens a call used, as the provider accounted them.
struct TokenUsage: Sendable, Equatable {
    /// Input tokens not read from the cache (OpenAI: prompt − cached; Anthropic: input_tokens).
    var input = 0
    /// Cached input tokens read (OpenAI cached_tokens, Anthropic cache_read_input_tokens).
    var cachedInput = 0
    /// Input tokens written to the cache (Anthropic cache_creation_input_tokens).
    var cacheWrite = 0
    /// Output tokens, reasoning included.
    var output = 0
    /// Of which reasoning (OpenAI reasoning_tokens).
    var reasoning = 0

    /// What the caps count: every input and output token.
    var total: Int { input + cachedInput + cacheWrite + output }

    /// Cost in pico-USD (10⁻¹² USD): USD per million tokens × tokens × 10⁶.
    func cost(_ price: ModelPrice) -> Int64 {
        // Saturating: a price an admin mistyped by orders of magnitude makes a large cost, never a trap.
        func pico(_ tokens: Int, _ usdPerMillion: Double) -> Int64 {
            Int64(min((Double(tokens) * usdPerMillion * 1_000_000).rounded(.up), 1e18))
        }
        return pico(input, price.inputUSDPerMillion) + pico(cachedInput, price.cachedInputUSDPerMillion)
            + pico(cacheWrite, price.cacheWriteUSDPerMillion) + pico(output, price.outputUSDPerMillion)
    }

    /// From an OpenAI `usage` object (chat completions or embeddings).
    init(openAI usage: OpenAIUsage) {
        let cached = usage.promptTokensDetails?.cachedTokens ?? 0
        self.init(
            input: max(0, (usage.promptTokens ?? 0) - cached), cachedInput: cached, cacheWrite: 0, output: usage.completionTokens ?? 0,
            reasoning: usage.completionTokensDetails?.reasoningTokens ?? 0
        )
    }

    /// From a Responses API `usage` object.
    init(responses usage: ResponsesUsage) {
        let cached = usage.inputTokensDetails?.cachedTokens ?? 0
        self.init(
            input: max(0, (usage.inputTokens ?? 0) - cached), cachedInput: cached, cacheWrite: 0, output: usage.outputTokens ?? 0,
            reasoning: usage.outputTokensDetails?.reasoningTokens ?? 0
        )
    }

    init(input: Int = 0, cachedInput: Int = 0, cacheWrite: Int = 0, output: Int = 0, reasoning: Int = 0) {
        self.input = input
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.output = output
        self.reasoning = reasoning
    }

    /// Merges an Anthropic `usage` object (a message, `message_start` or `message_delta`): later counts replace earlier ones.
    mutating func merge(anthropic usage: AnthropicUsage) {
        if let value = usage.inputTokens { input = value }
        if let value = usage.cacheReadInputTokens { cachedInput = value }
        if let value = usage.cacheCreationInputTokens { cacheWrite = value }
        if let value = usage.outputTokens { output = value }
    }
}
