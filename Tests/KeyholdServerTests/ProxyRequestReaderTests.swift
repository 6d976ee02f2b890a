import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdTestTraits
import KeyholdTesting
import KeyholdVault
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import KeyholdProxy

/// The proxy's request reader (`ProxyConnectionHandler`) on an `EmbeddedChannel`, driven by virtual time: a body over
/// the limit is refused before it is read whole, and a request sent too slowly, or a connection left idle, is closed.
@Suite(.offCooperativePool) struct ProxyRequestReaderTests {
    /// A metering proxy on a real store; nothing listens, and no upstream is called by these requests.
    static func proxy(maximumBodyBytes: Int = 1024) throws -> (MeteringProxy, InProcessHost) {
        let host = try InProcessHost()
        let configuration = ProxyConfiguration(
            tcpAddress: nil, socketPath: nil, upstreamBaseURLs: [:], maximumBodyBytes: maximumBodyBytes, requestReadTimeout: .seconds(5),
            idleTimeout: .seconds(60))
        let proxy = try MeteringProxy(
            store: host.store, vaults: VaultRing(try host.state.loadVault()), plans: try PlanCatalog.load(directory: BuildProducts.plansDirectory),
            configuration: configuration, journalDirectory: host.root + "/journal", logger: Logger(label: "test"))
        return (proxy, host)
    }

    static func channel(_ proxy: MeteringProxy) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ProxyConnectionHandler(proxy: proxy))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8787)).wait()  // an agent's connection, active
        return channel
    }

    static func head(_ path: String, length: Int?) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "content-type", value: "application/json")
        if let length { head.headers.add(name: "content-length", value: String(length)) }
        return head
    }

    /// The response head and body the handler wrote.
    static func answer(_ channel: EmbeddedChannel) throws -> (HTTPResponseHead, String) {
        guard case .head(let head) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            throw KeyholdError.failed("no response head")
        }
        var body = ""
        while let part = try channel.readOutbound(as: HTTPServerResponsePart.self) {
            if case .body(.byteBuffer(let buffer)) = part { body += String(buffer: buffer) }
        }
        return (head, body)
    }

    @Test(arguments: ["/v1/chat/completions", "/v1/messages"])
    func aDeclaredBodyOverTheLimitIsRefusedInTheProvidersShapeBeforeItIsRead(path: String) throws {
        let (proxy, _) = try Self.proxy()
        let channel = try Self.channel(proxy)
        try channel.writeInbound(HTTPServerRequestPart.head(Self.head(path, length: 4096)))
        try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(repeating: UInt8(ascii: "x"), count: 4096)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        let (head, body) = try Self.answer(channel)
        #expect(head.status == .payloadTooLarge)
        #expect(body.contains("larger than 1024 bytes"))
        // Each provider's own error shape: OpenAI's `error.type`, Anthropic's `type: "error"`.
        #expect(path == "/v1/messages" ? body.contains(#""type":"error""#) : body.contains(#""error":{"#), "\(body)")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aBodyThatGrowsPastTheLimitInPartsIsRefusedToo() throws {
        let (proxy, _) = try Self.proxy()
        let channel = try Self.channel(proxy)
        try channel.writeInbound(HTTPServerRequestPart.head(Self.head("/v1/chat/completions", length: nil)))
        for _ in 0..<5 { try channel.writeInbound(HTTPServerRequestPart.body(ByteBuffer(repeating: UInt8(ascii: "x"), count: 300))) }
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        #expect(try Self.answer(channel).0.status == .payloadTooLarge)
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test func aRequestSentTooSlowlyGets408AndItsConnectionCloses() throws {
        let (proxy, _) = try Self.proxy()
        let channel = try Self.channel(proxy)
        try channel.writeInbound(HTTPServerRequestPart.head(Self.head("/v1/messages", length: 100)))
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil, "still within the read timeout")
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let (head, body) = try Self.answer(channel)
        #expect(head.status == .requestTimeout && head.headers["connection"] == ["close"])
        #expect(body.contains("not received within 5 s"))
        #expect(!channel.isActive, "the connection was closed")
    }

    @Test func anIdleConnectionIsClosedSilentlyAfterTheIdleTimeout() throws {
        let (proxy, _) = try Self.proxy()
        let channel = try Self.channel(proxy)
        channel.embeddedEventLoop.advanceTime(by: .seconds(59))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(!channel.isActive)
        #expect(try channel.readOutbound(as: HTTPServerResponsePart.self) == nil, "nothing is written to an idle connection")
    }
}
