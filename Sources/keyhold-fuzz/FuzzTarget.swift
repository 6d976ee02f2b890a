import Glibc
import KeyholdCore
import KeyholdEgress
import KeyholdExecPayload
import KeyholdProxy

/// The parsers fed bytes a tenant (or a provider a tenant points at) chooses, one fuzz target each.
enum FuzzTarget: String, CaseIterable {
    /// The metering proxy's request reader, on every path it serves.
    case requestBody = "request-body"
    /// The SSE usage readers of OpenAI's, Anthropic's and the Responses API's streams.
    case streamUsage = "stream-usage"
    /// The usage reader of a whole (non-streamed) answer.
    case answerUsage = "answer-usage"
    /// The egress gateway's TLS ClientHello (SNI) parser.
    case clientHello = "client-hello"
    /// The egress gateway's CONNECT and Host request-head parser.
    case requestHead = "request-head"
    /// The sandbox resolver's DNS query parser.
    case dnsQuery = "dns-query"
    /// keyhold-exec's payload decoder.
    case execPayload = "exec-payload"
    /// The tenant console's form decoder.
    case consoleForm = "console-form"

    /// The plan the request reader checks bodies against (the managed plan shipped in `plans/`).
    nonisolated(unsafe) static var plan: Plan?

    /// Runs one input.
    func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        switch self {
        case .requestBody:
            guard let plan = Self.plan else { fatalError("the plan was not loaded") }
            ProxyFuzzTargets.requestBody(Array(bytes), plan: plan)
        case .streamUsage: ProxyFuzzTargets.streamUsage(Array(bytes))
        case .answerUsage: ProxyFuzzTargets.answerUsage(Array(bytes))
        case .clientHello: EgressFuzzTargets.clientHello(Array(bytes))
        case .requestHead: EgressFuzzTargets.requestHead(Array(bytes))
        case .dnsQuery: EgressFuzzTargets.dnsQuery(Array(bytes))
        case .execPayload:
            // As keyhold-exec reads it: a malloc'd buffer the decoder writes NULs into, exactly as long as the input.
            let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: max(bytes.count, 1))
            defer { copy.deallocate() }
            if let base = bytes.baseAddress { copy.initialize(from: base, count: bytes.count) }
            if let payload = try? Payload(decoding: copy, count: bytes.count) {
                for entry in payload.environment { precondition(strlen(entry.name) > 0, "an empty variable name was accepted") }
                precondition(payload.arguments.isEmpty || payload.arguments.last! == nil, "an argv without its NULL")
            }
        case .consoleForm: _ = try? FormURLEncoded(bytes: bytes)
        }
    }
}
