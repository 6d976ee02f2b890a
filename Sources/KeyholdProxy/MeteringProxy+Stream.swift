import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import KeyholdCore
import NIOCore

extension MeteringProxy {
    /// Forwards a server-sent-events stream event by event as it arrives, reading usage on the way.
    ///
    /// OpenAI's usage chunk is stripped when the client did not ask for it. A stream whose estimated output
    /// reaches the reservation is cut with a final error event; a stream whose usage never arrives (client gone,
    /// upstream cut) is charged its reservation.
    func stream(
        _ response: HTTPClientResponse, format: WireFormat, ask: Ask, caller: ProxyCaller, reservation: Reservation, id: String,
        started: ContinuousClock.Instant
    ) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let body = ResponseBody { writer in
            var events = SSEEvents()
            var usage: TokenUsage?
            var anthropic = TokenUsage()
            var outputCharacters = 0
            var failure: String?
            do {
                upstream: for try await chunk in response.body {
                    for event in events.feed(chunk.readableBytesView) {
                        let data = SSEEvents.data(event)
                        var forward = true
                        // Only events that can carry usage are parsed; output is estimated by a byte scan.
                        if data.first == UInt8(ascii: "{") {
                            outputCharacters += SSEEvents.stringCharacters(ofKey: format == .openAI ? "content" : "text", in: data)
                        }
                        if SSEEvents.mayCarryUsage(data), let json = SSEEvents.json(data) {
                            switch format {
                            case .openAI:
                                if let reported = json["usage"] as? [String: Any] {
                                    usage = TokenUsage.openAI(reported)
                                    if (json["choices"] as? [Any])?.isEmpty == true && !ask.clientWantsUsage { forward = false }
                                }
                            case .anthropic:
                                if let message = json["message"] as? [String: Any], let reported = message["usage"] as? [String: Any] {
                                    anthropic.mergeAnthropic(reported)
                                }
                                if let reported = json["usage"] as? [String: Any] {
                                    anthropic.mergeAnthropic(reported)
                                    if json["type"] as? String == "message_delta" { usage = anthropic }
                                }
                            }
                        }
                        if forward { try await writer.write(ByteBuffer(bytes: event)) }
                        // About 4 characters a token: past the reservation by a clear margin, the provider ignored max_tokens.
                        if usage == nil && outputCharacters / 4 > ask.reservedOutputTokens + 16 {
                            failure = "the stream reached its reservation of \(ask.reservedOutputTokens) output tokens and was cut"
                            break upstream
                        }
                    }
                }
                if usage == nil && failure == nil { failure = "the provider's stream ended without its usage" }
            } catch {
                failure = "the provider's stream was cut: \(Self.describe(error))"
            }
            if let failure, usage == nil {
                let event: [UInt8] =
                    format == .anthropic
                    ? Array("event: error\ndata: ".utf8) + format.errorBody(type: "api_error", message: failure) + Array("\n\n".utf8)
                    : Array("data: ".utf8) + format.errorBody(type: format.upstreamError, message: failure) + Array("\n\n".utf8)
                try? await writer.write(ByteBuffer(bytes: event))
            }
            self.settle(
                reservation, caller: caller, ask: ask, usage: usage, status: 200, charged: usage == nil ? "reservation" : "usage", started: started,
                id: id
            )
            try? await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
