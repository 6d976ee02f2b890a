public import KeyholdCore
import NIOCore

/// Entry points for the fuzzer (`keyhold-fuzz`, `deploy/fuzz.sh`): each hands arbitrary bytes to a parser the way the
/// metering proxy does, and stops the process when a promise the proxy relies on breaks. The daemon never calls them.
public enum ProxyFuzzTargets {
    /// A request body as the proxy reads it on each path it serves (model, stream flag, caps, duplicate keys, what
    /// cannot be priced): the reservation it makes is positive, and the body forwarded is the client's or its
    /// usage-asking rewrite.
    public static func requestBody(_ bytes: [UInt8], plan: Plan) {
        let body = ByteBuffer(bytes: bytes)
        let paths: [(String, WireFormat)] = [
            ("/v1/chat/completions", .openAI), ("/v1/responses", .openAI), ("/v1/embeddings", .openAI), ("/v1/messages", .anthropic),
        ]
        for (path, format) in paths {
            guard case .ask(let ask) = MeteringProxy.read(body, path: path, plan: plan, format: format) else { continue }
            precondition(ask.reservedTokens >= 1 && ask.reservedOutputTokens >= 0, "a reservation that is not positive")
            precondition(ask.completions >= 1, "fewer than one completion reserved")
            precondition(ask.body.readableBytes >= body.readableBytes, "the forwarded body lost bytes of the client's")
        }
    }

    /// A provider's stream, split into events as the proxy splits it and read for usage in each format: the usage
    /// found is never negative, and its cost can be computed.
    public static func streamUsage(_ bytes: [UInt8]) {
        let kinds: [(WireFormat, Bool)] = [(.openAI, false), (.openAI, true), (.anthropic, false)]
        for (format, isResponses) in kinds {
            var events = SSEEvents()
            var reader = StreamUsageReader(format: format, isResponses: isResponses, clientWantsUsage: false)
            // Fed in two parts, as bytes arrive: an event split between reads is read whole.
            let middle = bytes.count / 2
            for part in [bytes[..<middle], bytes[middle...]] {
                for event in events.feed(part) { _ = reader.read(event) }
            }
            precondition(reader.outputCharacters >= 0, "a negative output estimate")
            for usage in [reader.usage, reader.anthropic].compactMap(\.self) { check(usage) }
        }
    }

    /// A provider's whole (non-streamed) answer, read for its usage.
    public static func answerUsage(_ bytes: [UInt8]) {
        guard let carrier = UsageCarrier.decode(bytes) else { return }
        if let reported = carrier.openAIUsage { check(TokenUsage(openAI: reported)) }
        if let reported = carrier.responsesUsage { check(TokenUsage(responses: reported)) }
        if let reported = carrier.anthropicUsage {
            var usage = TokenUsage()
            usage.merge(anthropic: reported)
            check(usage)
        }
    }

    private static func check(_ usage: TokenUsage) {
        precondition(
            usage.input >= 0 && usage.cachedInput >= 0 && usage.cacheWrite >= 0 && usage.output >= 0 && usage.reasoning >= 0,
            "a negative token count was accepted from a provider")
        let price = ModelPrice(id: "fuzz", provider: .openai, inputUSDPerMillion: 15, outputUSDPerMillion: 75)
        precondition(usage.cost(price) >= 0 && usage.total >= 0, "a negative cost")
    }
}
