/// Reads a metered stream's events as they pass: the usage the provider reports (OpenAI's final chunk, Anthropic's
/// `message_start` and `message_delta`, the Responses API's `response.completed`), and an estimate of the output
/// so far from a byte scan of its deltas. Only events that may carry usage are parsed.
struct StreamUsageReader {
    let format: WireFormat
    let isResponses: Bool
    /// The client asked for OpenAI's usage chunk itself (else the chunk is kept from it: the proxy asked for it).
    let clientWantsUsage: Bool
    /// The usage reported, once the provider reported it whole.
    var usage: TokenUsage?
    /// Anthropic reports usage in two events.
    var anthropic = TokenUsage()
    /// Characters of output text seen in deltas.
    var outputCharacters = 0

    /// What one event held.
    struct Reading {
        /// Whether the event goes on to the client.
        var forward = true
        /// The response's id (Responses API), when the event reported it.
        var responseID: String?
    }

    /// Reads one whole event (with its terminating blank line).
    mutating func read(_ event: [UInt8]) -> Reading {
        var reading = Reading()
        let data = SSEEvents.data(event)
        if data.first == UInt8(ascii: "{"), !isResponses || SSEEvents.mayCarryDelta(event) {
            outputCharacters += SSEEvents.stringCharacters(
                ofKey: isResponses ? SSEEvents.deltaKey : format == .openAI ? SSEEvents.contentKey : SSEEvents.textKey, in: data)
        }
        guard SSEEvents.mayCarryUsage(data) else { return reading }
        if isResponses {
            if let reported = ResponsesEventUsage(eventData: data) {
                usage = TokenUsage(responses: reported.usage)
                reading.responseID = reported.id
            }
        } else if let carrier = UsageCarrier.decode(data) {
            switch format {
            case .openAI:
                if let reported = carrier.openAIUsage {
                    usage = TokenUsage(openAI: reported)
                    if carrier.choices?.isEmpty == true && !clientWantsUsage { reading.forward = false }
                }
            case .anthropic:
                if let reported = carrier.message?.usage { anthropic.merge(anthropic: reported) }
                if let reported = carrier.anthropicUsage {
                    anthropic.merge(anthropic: reported)
                    if carrier.type == "message_delta" { usage = anthropic }
                }
            }
        }
        return reading
    }
}
