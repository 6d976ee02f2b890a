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
        func pico(_ tokens: Int, _ usdPerMillion: Double) -> Int64 { Int64((Double(tokens) * usdPerMillion * 1_000_000).rounded(.up)) }
        return pico(input, price.inputUSDPerMillion) + pico(cachedInput, price.cachedInputUSDPerMillion)
            + pico(cacheWrite, price.cacheWriteUSDPerMillion) + pico(output, price.outputUSDPerMillion)
    }

    /// From an OpenAI `usage` object (chat completions or embeddings).
    static func openAI(_ usage: [String: Any]) -> TokenUsage {
        let prompt = usage["prompt_tokens"] as? Int ?? 0
        let cached = (usage["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? 0
        let completion = usage["completion_tokens"] as? Int ?? 0
        let reasoning = (usage["completion_tokens_details"] as? [String: Any])?["reasoning_tokens"] as? Int ?? 0
        return TokenUsage(input: max(0, prompt - cached), cachedInput: cached, cacheWrite: 0, output: completion, reasoning: reasoning)
    }

    /// Merges an Anthropic `usage` object (a message, `message_start` or `message_delta`): later counts replace earlier ones.
    mutating func mergeAnthropic(_ usage: [String: Any]) {
        if let value = usage["input_tokens"] as? Int { input = value }
        if let value = usage["cache_read_input_tokens"] as? Int { cachedInput = value }
        if let value = usage["cache_creation_input_tokens"] as? Int { cacheWrite = value }
        if let value = usage["output_tokens"] as? Int { output = value }
    }
}
