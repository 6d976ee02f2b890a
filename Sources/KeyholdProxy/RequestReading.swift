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
}

/// A parsed request, or the answer that refuses it.
enum Reading {
    case ask(Ask)
    case refused(ProxyAnswer)
}

extension MeteringProxy {
    /// Parses the body: model allowed, stream flag, reservation size. A refusal is already in the provider's format.
    /// - Parameter listedPrices: for a tenant's own key (brokered), any model goes, priced as this host lists it (zero
    ///   when it lists none); nil: the plan's models only, at the plan's prices.
    func read(_ body: ByteBuffer, path: String, plan: Plan, format: WireFormat, listedPrices: PlanCatalog? = nil) -> Reading {
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
            ?? plan.models.first(where: { $0.id == model && $0.provider == provider })
        guard let price = planPrice else {
            let allowed = plan.models.filter { $0.provider == provider }.map(\.id).joined(separator: ", ")
            return .refused(
                format.error(.forbidden, type: format.permissionError, message: "model '\(model)' is not in plan '\(plan.id)' (allowed: \(allowed))")
            )
        }
        let requested = fields.maxTokens ?? fields.maxCompletionTokens
        if let requested, requested <= 0 {
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: "max_tokens must be positive"))
        }
        let output = path.hasSuffix("/embeddings") ? 0 : (requested ?? plan.caps?.defaultMaxTokens ?? 4096)
        // Input tokens are not known before the provider counts them: reserve one per 3 bytes of body, an upper bound for text.
        let input = max(1, (body.readableBytes + 2) / 3)
        let stream = fields.stream ?? false
        let clientWantsUsage = fields.streamOptions?.includeUsage ?? false
        var forwarded = body
        if stream && format == .openAI && !clientWantsUsage {
            // Ask for the final usage chunk (stripped again before the client sees it): streamed calls are metered exactly.
            forwarded = Self.askingForUsage(body, hasStreamOptions: fields.streamOptions != nil) ?? body
        }
        return .ask(
            Ask(
                model: model, provider: provider, price: price, stream: stream, clientWantsUsage: clientWantsUsage,
                reservedTokens: input + output, reservedOutputTokens: output, body: forwarded
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
