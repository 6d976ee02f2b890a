import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import KeyholdProxy

/// The provider's side of a call, on an `EmbeddedChannel`: what the receiver hears, when reads are held for a slow
/// agent, when the connection is kept for the next call, and how it fails.
struct UpstreamConnectionHandlerTests {
    /// Everything the handler reports, in order.
    final class Recorder: UpstreamReceiver {
        var events: [String] = []
        var failure: UpstreamFailure?
        /// When set, each body part is "taken" by the agent only once this promise completes.
        var pending: EventLoopPromise<Void>?

        func upstreamSent() { events.append("sent") }
        func upstreamHead(_ head: HTTPResponseHead) { events.append("head \(head.status.code)") }
        func upstreamBody(_ buffer: ByteBuffer) -> EventLoopFuture<Void>? {
            events.append("body \(String(buffer: buffer))")
            return pending?.futureResult
        }
        func upstreamReadComplete() { events.append("read-complete") }
        func upstreamFinished() { events.append("finished") }
        func upstreamFailed(_ failure: UpstreamFailure) {
            events.append("failed")
            self.failure = failure
        }
    }

    /// Counts the reads that reach the socket (the head of the pipeline).
    final class ReadCounter: ChannelOutboundHandler {
        typealias OutboundIn = Any
        var reads = 0
        func read(context: ChannelHandlerContext) {
            reads += 1
            context.read()
        }
    }

    static func call(on channel: EmbeddedChannel, handler: UpstreamConnectionHandler, to recorder: Recorder) throws {
        handler.send(
            head: HTTPRequestHead(version: .http1_1, method: .POST, uri: "/v1/chat/completions"), body: ByteBuffer(string: "{}"), to: recorder)
        // The request as written: head, body, end.
        guard case .head(let head) = try channel.readOutbound(as: HTTPClientRequestPart.self) else { throw TestFailure("no head") }
        #expect(head.uri == "/v1/chat/completions")
        guard case .body = try channel.readOutbound(as: HTTPClientRequestPart.self),
            case .end = try channel.readOutbound(as: HTTPClientRequestPart.self)
        else { throw TestFailure("no body and end") }
    }

    /// A channel that is connected (active), as a provider's connection is when a call is sent on it.
    static func connected(_ handlers: [any ChannelHandler]) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers(handlers)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 443)).wait()
        return channel
    }

    struct TestFailure: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }

    @Test func anAnswerReachesTheReceiverInOrderAndAKeptAliveConnectionServesTheNextCall() throws {
        let handler = UpstreamConnectionHandler(readTimeout: .seconds(30), idleTimeout: .seconds(60))
        let channel = try Self.connected([handler])
        var reusable = 0
        handler.onReusable = { reusable += 1 }
        let recorder = Recorder()
        try Self.call(on: channel, handler: handler, to: recorder)
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "data: 1\n\n")))
        try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "data: 2\n\n")))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(recorder.events.filter { $0 != "read-complete" } == ["sent", "head 200", "body data: 1\n\n", "body data: 2\n\n", "finished"])
        #expect(reusable == 1 && handler.isIdle, "a keep-alive answer leaves the connection for the next call")

        let heardByFirst = recorder.events
        let next = Recorder()
        try Self.call(on: channel, handler: handler, to: next)
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .tooManyRequests)))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(next.events.contains("head 429") && next.events.last == "finished")
        #expect(recorder.events == heardByFirst, "the first call hears nothing of the second")
        _ = try channel.finish()
    }

    @Test func readsWaitForTheAgentToTakeWhatWasForwarded() throws {
        let counter = ReadCounter()
        let handler = UpstreamConnectionHandler(readTimeout: .seconds(30), idleTimeout: .seconds(60))
        let channel = try Self.connected([counter, handler])
        let recorder = Recorder()
        try Self.call(on: channel, handler: handler, to: recorder)
        try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        let taken = channel.eventLoop.makePromise(of: Void.self)
        recorder.pending = taken
        try channel.writeInbound(HTTPClientResponsePart.body(ByteBuffer(string: "data: slow\n\n")))
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before, "no read from the provider while the agent has not taken the last part")
        taken.succeed()
        #expect(counter.reads == before + 1, "the held read goes out once the agent took it")
        channel.read()
        #expect(counter.reads == before + 2)
        _ = try channel.finish()
    }

    @Test func aConnectionClosedAnswersTheCallWithWhetherAnyAnswerHadArrived() throws {
        for answeredFirst in [false, true] {
            let handler = UpstreamConnectionHandler(readTimeout: .seconds(30), idleTimeout: .seconds(60))
            let channel = try Self.connected([handler])
            let recorder = Recorder()
            try Self.call(on: channel, handler: handler, to: recorder)
            if answeredFirst { try channel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok))) }
            channel.pipeline.fireChannelInactive()
            guard case .connectionLost(let answered) = recorder.failure else {
                Issue.record("no connection-lost failure: \(recorder.events)")
                continue
            }
            #expect(answered == answeredFirst)
            #expect(recorder.events.filter { $0 == "failed" }.count == 1, "reported once")
        }
    }

    @Test func aCloseAnswerIsNotReusedAndASilentProviderTimesOut() throws {
        let handler = UpstreamConnectionHandler(readTimeout: .seconds(5), idleTimeout: .seconds(60))
        let channel = try Self.connected([handler])
        var reusable = 0
        handler.onReusable = { reusable += 1 }
        let recorder = Recorder()
        try Self.call(on: channel, handler: handler, to: recorder)
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "connection", value: "close")
        try channel.writeInbound(HTTPClientResponsePart.head(head))
        try channel.writeInbound(HTTPClientResponsePart.end(nil))
        #expect(reusable == 0 && !channel.isActive, "Connection: close ends the connection with the call")

        let quiet = UpstreamConnectionHandler(readTimeout: .seconds(5), idleTimeout: .seconds(60))
        let quietChannel = try Self.connected([quiet])
        let waiting = Recorder()
        try Self.call(on: quietChannel, handler: quiet, to: waiting)
        quietChannel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(waiting.failure == nil, "4 s of silence is within the read timeout")
        try quietChannel.writeInbound(HTTPClientResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        quietChannel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(waiting.failure == nil, "activity moved the deadline on")
        quietChannel.embeddedEventLoop.advanceTime(by: .seconds(2))
        guard case .timeout(let seconds) = waiting.failure else {
            Issue.record("no timeout: \(waiting.events)")
            return
        }
        #expect(seconds == 5 && !quietChannel.isActive)
    }
}
