import Foundation
import NIOCore
import NIOHTTP1

/// The provider's answer, as the upstream connection reports it on the exchange's event loop.
extension ProxyExchange: UpstreamReceiver {
    /// The largest non-streamed answer collected.
    static let maximumAnswerBytes = 64 << 20
    /// Response headers passed on to the agent.
    static let passedHeaders = ["request-id", "x-request-id", "openai-processing-ms", "retry-after"]

    func upstreamSent() { requestSent = true }

    func upstreamHead(_ head: HTTPResponseHead) {
        response.status = Int(head.status.code)
        response.headers = head.headers
        response.isStream = (200..<300).contains(response.status) && head.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true
        guard response.isStream else { return }
        let headers: HTTPHeaders =
            caller?.brokered != nil
            ? brokeredResponseHeaders(head.headers) : ["content-type": "text/event-stream", "cache-control": "no-cache"]
        connection?.beginStream(status: head.status, headers: headers)
    }

    /// Collects an answer, or forwards a stream's complete events; the future (when there is one) completes once the
    /// agent's socket took them, so a slow agent slows the upstream read instead of filling memory.
    func upstreamBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void>? {
        guard !isSettled else { return nil }
        guard response.isStream else {
            if response.collected.readableBytes + buffer.readableBytes > Self.maximumAnswerBytes {
                upstream?.cancel()
                settle(usage: nil, status: 502, charged: "reservation")
                finish(
                    format.error(
                        .badGateway, type: format.upstreamError, message: "the provider's answer is larger than \(Self.maximumAnswerBytes) bytes"))
                return nil
            }
            var buffer = buffer
            response.collected.writeBuffer(&buffer)
            return nil
        }
        // The events forwarded from this part, in one buffer (one write).
        var forwarded = ByteBuffer()
        forwarded.reserveCapacity(buffer.readableBytes)
        guard let ask else {
            // A brokered call that is not metered: its events pass whole, each echo of the key replaced.
            for event in response.events.feed(buffer.readableBytesView) {
                var event = ByteBuffer(bytes: event)
                redactEcho(&event)
                forwarded.writeBuffer(&event)
            }
            return forwarded.readableBytes > 0 ? connection?.send([forwarded]) : nil
        }
        if response.reader == nil {
            response.reader = StreamUsageReader(format: format, isResponses: ask.isResponses, clientWantsUsage: ask.clientWantsUsage)
        }
        for event in response.events.feed(buffer.readableBytesView) {
            let reading = response.reader!.read(event)
            if let reported = response.reader!.usage { response.usage = reported }
            if let id = reading.responseID { recordResponse(id) }
            if reading.forward {
                if brokeredSecret == nil {
                    forwarded.writeBytes(event)
                } else {
                    var event = ByteBuffer(bytes: event)
                    redactEcho(&event)
                    forwarded.writeBuffer(&event)
                }
            }
            // About 4 characters a token: past the reservation by a clear margin, the provider ignored max_tokens.
            if response.usage == nil && response.outputCharacters / 4 > ask.reservedOutputTokens + 16 {
                if forwarded.readableBytes > 0 { _ = connection?.send([forwarded]) }
                endStream(failure: "the stream reached its reservation of \(ask.reservedOutputTokens) output tokens and was cut")
                upstream?.cancel()
                return nil
            }
        }
        return forwarded.readableBytes > 0 ? connection?.send([forwarded]) : nil
    }

    func upstreamReadComplete() {
        if response.isStream { connection?.flush() }
    }

    func upstreamFinished() {
        guard !isSettled else { return }
        upstreamEnded = .now
        if response.isStream {
            // A metered stream must end with its usage; a brokered pass-through stream ends as the provider ended it.
            return endStream(failure: response.usage == nil && ask != nil ? "the provider's stream ended without its usage" : nil)
        }
        let status = response.status
        var usage: TokenUsage? = (200..<300).contains(status) ? nil : TokenUsage()
        if usage == nil, let carrier = UsageCarrier.decode(response.collected.readableBytesView) {
            if format == .anthropic, let reported = carrier.anthropicUsage {
                var merged = TokenUsage()
                merged.merge(anthropic: reported)
                usage = merged
            } else if ask?.isResponses == true {
                if let reported = carrier.responsesUsage { usage = TokenUsage(responses: reported) }
                if let id = carrier.id { recordResponse(id) }
            } else if format == .openAI, let reported = carrier.openAIUsage {
                usage = TokenUsage(openAI: reported)
            }
        }
        settle(usage: usage, status: status, charged: usage == nil ? "reservation" : "usage")
        if caller?.brokered != nil {
            var body = response.collected
            redactEcho(&body)
            return finish(ProxyAnswer(status: HTTPResponseStatus(statusCode: status), headers: brokeredResponseHeaders(response.headers), body: body))
        }
        var headers = HTTPHeaders([("content-type", response.headers.first(name: "content-type") ?? "application/json")])
        for name in Self.passedHeaders {
            if let value = response.headers.first(name: name) { headers.add(name: name, value: value) }
        }
        finish(ProxyAnswer(status: HTTPResponseStatus(statusCode: status), headers: headers, body: response.collected))
    }

    func upstreamFailed(_ failure: UpstreamFailure) {
        if upstreamEnded == nil { upstreamEnded = .now }
        guard !isSettled else { return }
        if response.isStream { return endStream(failure: "the provider's stream was cut: \(failure)") }
        // Nothing reached the provider: nothing to charge. Sent but unanswered: it may have cost the platform.
        settle(usage: requestSent ? nil : TokenUsage(), status: 502, charged: requestSent ? "reservation" : "none")
        if case .timeout = failure {
            return finish(format.error(.gatewayTimeout, type: format.timeoutError, message: "the provider did not answer: \(failure)"))
        }
        finish(format.error(.badGateway, type: format.upstreamError, message: "the provider could not be reached: \(failure)"))
    }

    /// Ends a stream: a final error event when its usage never came, then settlement (the reservation when unknown).
    private func endStream(failure: String?) {
        if let failure, response.usage == nil { _ = connection?.send([format.errorEvent(message: failure)]) }
        settle(usage: response.usage, status: 200, charged: response.usage == nil ? "reservation" : "usage")
        connection?.endStream()
        connection = nil
        wipeBrokeredKey()
    }

}
