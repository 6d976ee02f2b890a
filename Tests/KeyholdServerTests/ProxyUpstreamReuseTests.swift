import Foundation
import GRDB
import KeyholdCore
import KeyholdStore
import KeyholdTestTraits
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// Keep-alive connections to the provider: a provider may close an idle connection at any moment, and a request
/// that crosses that close must be sent again, once, on a new connection; a request on a new connection never is.
@Suite(.offCooperativePool, .serialized) struct ProxyUpstreamReuseTests {
    @Test func aRequestOnAnIdleConnectionTheProviderClosedIsSentAgainOnANewOne() async throws {
        let provider = try await ClosingProvider.start(answersPerConnection: 1)
        defer { provider.stop() }
        let proxy = try await ProxyHarness(daemonArguments: ["--provider-base-url", "openai=http://127.0.0.1:\(provider.port)"])
        // Each connection answers its first request and closes on the next without answering, so from the second
        // request on (per event loop of the proxy) every reuse meets a closed connection.
        var statuses: [Int] = []
        for _ in 0..<6 { statuses.append(try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat).status) }
        #expect(statuses == Array(repeating: 200, count: 6), "every request is answered")
        let seen = provider.seen
        #expect(seen.unanswered >= 1, "idle connections were reused and found closed: \(seen)")
        #expect(seen.answered == 6, "each request reached the provider and was answered once: \(seen)")
        #expect(seen.connections == 6, "each answer came on a new connection: \(seen)")

        let rows = try proxy.waitForUsageRows(6)
        #expect(rows.count == 6, "one row per request, none for the unanswered sends")
        for row in rows {
            let metered = [row.status, row.inputTokens, row.outputTokens]
            #expect(metered == [200, 11, 2] && row.charged == .usage, "\(row)")
        }
        try await proxy.stop()
    }

    @Test func aRequestOnANewConnectionIsNeverSentTwice() async throws {
        let provider = try await ClosingProvider.start(answersPerConnection: 0)
        defer { provider.stop() }
        let proxy = try await ProxyHarness(daemonArguments: ["--provider-base-url", "openai=http://127.0.0.1:\(provider.port)"])
        let answer = try await proxy.send("/v1/chat/completions", body: ProxyMeteringTests.chat)
        #expect(answer.status == 502, "\(answer.text)")
        #expect(answer.text.contains("closed before any answer"), "\(answer.text)")
        let seen = provider.seen
        #expect(seen.unanswered == 1 && seen.connections == 1, "sent once, not again: \(seen)")

        let row = try #require(try proxy.waitForUsageRows(1).first)
        #expect(row.status == 502 && row.charged == .reservation, "the provider may have begun it: \(row)")
        try await proxy.stop()
    }
}

/// An OpenAI-shaped provider on 127.0.0.1 that answers the first `answersPerConnection` requests of each connection
/// and closes the connection, without answering, when the next one arrives.
final class ClosingProvider: Sendable {
    struct Seen: Sendable, CustomStringConvertible {
        var connections = 0
        var answered = 0
        var unanswered = 0
        var description: String { "\(connections) connections, \(answered) answered, \(unanswered) closed unanswered" }
    }

    /// What the provider saw, shared with its connections' handlers.
    private final class Tally: Sendable {
        let seen = Mutex(Seen())
    }

    private let channel: any Channel
    private let tally: Tally
    let port: Int

    private init(channel: any Channel, tally: Tally) {
        self.channel = channel
        self.tally = tally
        port = channel.localAddress?.port ?? 0
    }

    var seen: Seen { tally.seen.withLock { $0 } }

    static func start(answersPerConnection: Int) async throws -> ClosingProvider {
        let tally = Tally()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    tally.seen.withLock { $0.connections += 1 }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        ClosingHandler(answers: answersPerConnection) { answered in
                            tally.seen.withLock { answered ? ($0.answered += 1) : ($0.unanswered += 1) }
                        })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ClosingProvider(channel: channel, tally: tally)
    }

    func stop() { channel.close(promise: nil) }
}

private final class ClosingHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let body = #"""
        {"id":"chatcmpl-reuse","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":11,"completion_tokens":2,"total_tokens":13}}
        """#

    private var remaining: Int
    private let record: @Sendable (_ answered: Bool) -> Void

    init(answers: Int, record: @escaping @Sendable (_ answered: Bool) -> Void) {
        remaining = answers
        self.record = record
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        guard remaining > 0 else {
            record(false)
            context.close(promise: nil)
            return
        }
        remaining -= 1
        record(true)
        var head = HTTPResponseHead(version: .http1_1, status: .ok)
        head.headers.add(name: "content-type", value: "application/json")
        head.headers.add(name: "content-length", value: String(Self.body.utf8.count))
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: Self.body)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
