import Foundation
import KeyholdCore
import NIOCore
import NIOHTTP1

/// What a request asks for, read from its body.
struct Ask: Sendable {
    var model: String
    var provider: Provider
    var price: ModelPrice
    var stream: Bool
    /// The client asked for OpenAI's final usage chunk itself.
    var clientWantsUsage: Bool
    var reservedTokens: Int
    var reservedOutputTokens: Int
    /// The body sent upstream (the client's, with `include_usage` asked for on OpenAI streams).
    var body: ByteBuffer
    /// The output maximum's fields the client sent, or the one a clamp adds when it sent none.
    var outputFields: [String] = []
    /// The output maximum the client asked for, when a clamp lowered it to `reservedOutputTokens`.
    var clampedFrom: Int?
    /// Responses API: the response this one continues, checked to be the tenant's own before anything is sent.
    var previousResponseID: String?
    /// A Responses API call (`POST /v1/responses`): its usage and id come in the Responses API's shapes.
    var isResponses = false
    /// The response it made, once the provider said (recorded with its usage: its tenant's from then on).
    var responseID: String?
    /// How many completions the request asks for (OpenAI's `n`): each may run to the output maximum.
    var completions = 1
}

/// A parsed request, or the answer that refuses it.
enum Reading {
    case ask(Ask)
    case refused(ProxyAnswer)
}

extension MeteringProxy {
    /// The largest output maximum a request may state: above any model's, and small enough that a reservation of
    /// `mostCompletions` of them cannot overflow.
    static let largestOutputMaximum = 16_777_216
    /// The most completions (`n`) one request may ask for (OpenAI's own limit).
    static let mostCompletions = 128

    /// Parses the body: model allowed, stream flag, reservation size. A refusal is already in the provider's format.
    /// - Parameter listedPrices: for a tenant's own key (brokered), any model goes, priced as this host lists it (zero
    ///   when it lists none); nil: the plan's models only, at the plan's prices.
    /// - Parameter headers: the client's; on the platform's key, one that changes the price is refused.
    static func read(
        _ body: ByteBuffer, path: String, plan: Plan, format: WireFormat, headers: HTTPHeaders = [:], listedPrices: PlanCatalog? = nil
    ) -> Reading {
        let fields: RequestFields
        do {
            fields = try RequestFields.decode(body.readableBytesView)
        } catch {
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: error.message))
        }
        if let duplicate = DuplicateJSONKeys.first(in: body.readableBytesView) {
            return .refused(
                format.error(
                    .badRequest, type: format.invalidRequestError,
                    message: "the request body has the key '\(duplicate.prefix(200))' twice in one object: send each key once"))
        }
        guard let model = fields.model else {
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: "the request has no 'model'"))
        }
        let provider: Provider = format == .anthropic ? .anthropic : .openai
        let planPrice =
            listedPrices.map {
                $0.listedPrice(model: model, provider: provider)
                    ?? ModelPrice(id: model, provider: provider, inputUSDPerMillion: 0, outputUSDPerMillion: 0)
            }
            ?? plan.model(matching: model, provider: provider)
        guard let price = planPrice else {
            let allowed = plan.models.filter { $0.provider == provider }.map(\.id).joined(separator: ", ")
            return .refused(
                format.error(.forbidden, type: format.permissionError, message: "model '\(model)' is not in plan '\(plan.id)' (allowed: \(allowed))")
            )
        }
        let stated = fields.statedOutputMaximums
        // `stated` and `outputFieldsSent` list the same fields in the same order.
        if let smallest = stated.min(), smallest <= 0 {
            let field = fields.outputFieldsSent[stated.firstIndex(of: smallest)!]
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: "\(field) must be positive"))
        }
        if let largest = stated.max(), largest > Self.largestOutputMaximum {
            let field = fields.outputFieldsSent[stated.firstIndex(of: largest)!]
            return .refused(
                format.error(.badRequest, type: format.invalidRequestError, message: "\(field) must be at most \(Self.largestOutputMaximum)"))
        }
        let requested = stated.max()
        let isResponses = path == "/v1/responses"
        if isResponses, fields.background == true {
            return .refused(
                format.error(
                    .badRequest, type: format.invalidRequestError,
                    message:
                        "background responses are not served on this plan: they run after the request returns, where the proxy cannot meter them or hold them to your caps; send the request without background (stream it for long tasks)"
                ))
        }
        if listedPrices == nil,
            let unpriced = UnpricedRequest.first(in: body, headers: headers, format: format, isResponses: isResponses)
        {
            // The platform's key pays: what the reservation cannot bound is not sent.
            return .refused(
                format.error(.badRequest, type: format.invalidRequestError, message: "'\(unpriced.field)' cannot be priced: \(unpriced.why)"))
        }
        let completions = isResponses || format == .anthropic ? 1 : (fields.n ?? 1)
        guard (1...Self.mostCompletions).contains(completions) else {
            return .refused(
                format.error(.badRequest, type: format.invalidRequestError, message: "n must be from 1 to \(Self.mostCompletions)"))
        }
        // `n` completions may each run to the maximum: the reservation covers them all.
        let output = path.hasSuffix("/embeddings") ? 0 : (requested ?? plan.caps?.defaultMaxTokens ?? 4096) * completions
        var outputFields = fields.outputFieldsSent
        if outputFields.isEmpty && output > 0 {
            outputFields = [isResponses ? "max_output_tokens" : format == .anthropic ? "max_tokens" : "max_completion_tokens"]
        }
        // Input tokens are not known before the provider counts them: reserve one per 3 bytes of body, an upper bound for text.
        let input = max(1, (body.readableBytes + 2) / 3)
        let stream = fields.stream ?? false
        let clientWantsUsage = fields.streamOptions?.includeUsage ?? false
        var forwarded = body
        if stream && format == .openAI && !clientWantsUsage && !isResponses {
            // Ask for the final usage chunk (stripped again before the client sees it): streamed calls are metered exactly.
            forwarded = Self.askingForUsage(body, hasStreamOptions: fields.streamOptions != nil) ?? body
        }
        return .ask(
            Ask(
                model: model, provider: provider, price: price, stream: stream, clientWantsUsage: clientWantsUsage,
                reservedTokens: input + output, reservedOutputTokens: output, body: forwarded, outputFields: outputFields,
                previousResponseID: fields.previousResponseID, isResponses: isResponses, completions: completions
            )
        )
    }

    /// The body with `stream_options.include_usage` set. Without `stream_options`, the key is inserted after the
    /// opening brace, leaving the client's bytes as they were; with it, the object is rewritten.
    static func askingForUsage(_ body: ByteBuffer, hasStreamOptions: Bool) -> ByteBuffer? {
        let bytes = body.readableBytesView
        if !hasStreamOptions, let brace = bytes.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }),
            bytes[brace] == UInt8(ascii: "{")
        {
            let split = brace - bytes.startIndex + 1
            var spliced = ByteBuffer()
            spliced.reserveCapacity(body.readableBytes + 40)
            spliced.writeBytes(bytes.prefix(split))
            spliced.writeString(#""stream_options":{"include_usage":true},"#)
            spliced.writeBytes(bytes.dropFirst(split))
            return spliced
        }
        guard var object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        var options = object["stream_options"] as? [String: Any] ?? [:]
        options["include_usage"] = true
        object["stream_options"] = options
        return (try? JSONSerialization.data(withJSONObject: object)).map { ByteBuffer(bytes: $0) }
    }
}
