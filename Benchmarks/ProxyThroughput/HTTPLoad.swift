import BenchmarkSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// One answer: status and body size, with a sample of the body when it was not a 200, and when the request was
/// written and the answer's last byte read, both taken on the connection's event loop (so the latency measured
/// leaves out the hops between the loop and the task that waits for the answer).
struct Reply: Sendable {
    var status: Int
    var bytes: Int
    var sample: String
    var written: ContinuousClock.Instant
    var ended: ContinuousClock.Instant
}

/// A request handed to a connection's pipeline, with the promise its answer completes.
struct Job: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var promise: EventLoopPromise<Reply>
}

/// A connection is closed or broke while a request was waiting.
struct ConnectionLost: Error, CustomStringConvertible {
    var description: String { "the connection closed before the answer ended" }
}

/// Keeps one request in flight on a keep-alive HTTP/1.1 connection and completes its promise at the last byte.
final class ClientHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Job
    typealias OutboundOut = HTTPClientRequestPart

    private var pending: EventLoopPromise<Reply>?
    private var written = ContinuousClock.now
    private var status = 0
    private var bytes = 0
    private var sample: [UInt8] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let job = unwrapOutboundIn(data)
        pending = job.promise
        status = 0
        bytes = 0
        sample.removeAll(keepingCapacity: true)
        written = .now
        context.write(wrapOutboundOut(.head(job.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(job.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body(let buffer):
            bytes += buffer.readableBytes
            if status != 200 && sample.count < 400 { sample += buffer.readableBytesView.prefix(400 - sample.count) }
        case .end:
            let promise = pending
            pending = nil
            promise?.succeed(
                Reply(status: status, bytes: bytes, sample: String(decoding: sample, as: UTF8.self), written: written, ended: .now))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        pending?.fail(error)
        pending = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pending?.fail(ConnectionLost())
        pending = nil
        context.fireChannelInactive()
    }
}

/// Where requests go: a loopback port, and the request bodies and auth for each kind of call.
struct Target: Sendable {
    var name: String
    var port: Int
    /// `Authorization: Bearer` value.
    var key: String
    var path = "/v1/chat/completions"

    func head(bodyLength: Int) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: path)
        head.headers.add(name: "host", value: "127.0.0.1:\(port)")
        head.headers.add(name: "content-type", value: "application/json")
        head.headers.add(name: "content-length", value: String(bodyLength))
        head.headers.add(name: "authorization", value: "Bearer " + key)
        head.headers.add(name: "user-agent", value: "keyhold-bench-proxy")
        return head
    }
}

/// The chat completion every measurement sends, streamed or not.
enum CallKind: String, Sendable, CaseIterable, Codable {
    case plain = "non-streaming"
    case stream = "streaming"
    /// The Responses API (`POST /v1/responses`), whole and as typed events.
    case responses = "responses"
    case responsesStream = "responses-stream"
    /// A chat completion whose `max_tokens` is more than the caps have left: the proxy lowers it (rewrites the body).
    case clamped = "clamped"

    /// Chat Completions, the kinds every proxy compared here serves.
    static let chat: [CallKind] = [.plain, .stream]
    /// The kinds measured at one client, at many connections and paced (a clamped request reserves all that is
    /// left, so its concurrent figures would be refusals: it is measured at one client only).
    static let compared: [CallKind] = [.plain, .stream, .responses, .responsesStream]

    var path: String {
        switch self {
        case .responses, .responsesStream: "/v1/responses"
        default: "/v1/chat/completions"
        }
    }

    var body: String {
        switch self {
        case .responses, .responsesStream:
            return #"{"model":"gpt-5-mini","instructions":"You are terse.","input":"Say hello.","max_output_tokens":64"#
                + (self == .responsesStream ? #","stream":true}"# : "}")
        case .clamped:
            return
                #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":1000000000000}"#
        case .plain, .stream:
            let stream = self == .stream ? #","stream":true"# : ""
            return
                #"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":64"#
                + stream + "}"
        }
    }
}

/// A keep-alive client connection with a raw NIO pipeline (no client library in the measured path).
struct Connection: Sendable {
    let channel: any Channel
    let target: Target
    let kind: CallKind
    let head: HTTPRequestHead
    let body: ByteBuffer

    static func open(_ target: Target, kind: CallKind, group: any EventLoopGroup) async throws -> Connection {
        let channel = try await ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ClientHandler())
                }
            }
            .connect(host: "127.0.0.1", port: target.port).get()
        let body = ByteBuffer(string: kind.body)
        var target = target
        target.path = kind.path
        return Connection(channel: channel, target: target, kind: kind, head: target.head(bodyLength: body.readableBytes), body: body)
    }

    /// Sends the request and waits for the last byte of the answer.
    func send() async throws -> Reply {
        let promise = channel.eventLoop.makePromise(of: Reply.self)
        channel.writeAndFlush(Job(head: head, body: body, promise: promise), promise: nil)
        return try await promise.futureResult.get()
    }

    func close() async {
        try? await channel.close()
    }
}

/// What a run of requests measured.
struct LoadResult: Sendable, Codable {
    var latenciesMs: [Double] = []
    var errors = 0
    var firstError: String?
    var seconds = 0.0

    var completed: Int { latenciesMs.count }
    var requestsPerSecond: Double { seconds > 0 ? Double(completed) / seconds : .nan }
    var median: Double { Percentiles.percentile(latenciesMs, 50) }
    var p99: Double { Percentiles.percentile(latenciesMs, 99) }

    /// An answer: its latency when it is a 200 with a body (timed from `from`, or from when the request was
    /// written), else an error.
    mutating func record(_ reply: Reply, from: ContinuousClock.Instant?) {
        if reply.status == 200 && reply.bytes > 0 {
            latenciesMs.append(Load.milliseconds(reply.ended - (from ?? reply.written)))
        } else {
            errors += 1
            if firstError == nil { firstError = "HTTP \(reply.status): \(reply.sample)" }
        }
    }

    /// A request that got no answer.
    mutating func record(failure: any Error) {
        errors += 1
        if firstError == nil { firstError = "\(failure)" }
    }

    mutating func merge(_ other: LoadResult) {
        latenciesMs += other.latenciesMs
        errors += other.errors
        if firstError == nil { firstError = other.firstError }
    }
}

/// Drives targets: one client at a time (interleaved with the baseline) or many connections at once.
enum Load {
    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// One request on `connection`, recorded in `result`; a broken connection is reopened.
    static func timed(_ connection: inout Connection, group: any EventLoopGroup, into result: inout LoadResult) async {
        do {
            result.record(try await connection.send(), from: nil)
        } catch {
            result.record(failure: error)
            await connection.close()
            if let reopened = try? await Connection.open(connection.target, kind: connection.kind, group: group) { connection = reopened }
        }
    }

    /// `count` requests one at a time to each target in turn (A, B, A, B, ...) after `warmup` untimed rounds, so both
    /// see the same conditions; returns one result per target.
    static func interleaved(_ targets: [Target], kind: CallKind, count: Int, warmup: Int, group: any EventLoopGroup) async throws -> [LoadResult] {
        try await interleaved(targets.map { ($0, kind) }, count: count, warmup: warmup, group: group)
    }

    /// One client taking turns over targets that each send their own kind: kinds compared in one loop see the same
    /// machine at the same moments (no drift between two runs).
    static func interleaved(
        _ pairs: [(target: Target, kind: CallKind)], count: Int, warmup: Int, group: any EventLoopGroup
    ) async throws -> [LoadResult] {
        var connections: [Connection] = []
        for pair in pairs { connections.append(try await Connection.open(pair.target, kind: pair.kind, group: group)) }
        var results = [LoadResult](repeating: LoadResult(), count: pairs.count)
        var discard = LoadResult()
        for _ in 0..<warmup {
            for index in connections.indices { await timed(&connections[index], group: group, into: &discard) }
        }
        let clock = ContinuousClock()
        let start = clock.now
        for round in 0..<count {
            for step in connections.indices {
                // Rotate which target goes first each round.
                let index = (step + round) % connections.count
                await timed(&connections[index], group: group, into: &results[index])
            }
        }
        let seconds = milliseconds(clock.now - start) / 1000
        for index in results.indices { results[index].seconds = seconds }
        for connection in connections { await connection.close() }
        return results
    }

    /// `connections` keep-alive connections, each sending requests back to back, until `count` requests have been
    /// sent or `duration` has passed (whichever is given).
    static func concurrent(
        _ target: Target, kind: CallKind, connections: Int, count: Int?, duration: Duration?, warmup: Int, group: any EventLoopGroup,
        alternateKinds: Bool = false
    ) async throws -> LoadResult {
        var opened: [Connection] = []
        for index in 0..<connections {
            let connectionKind = alternateKinds && index % 2 == 1 ? (kind == .plain ? CallKind.stream : .plain) : kind
            opened.append(try await Connection.open(target, kind: connectionKind, group: group))
        }
        // Warm-up: every connection sends a few requests, untimed.
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            for connection in opened {
                tasks.addTask {
                    var connection = connection
                    var discard = LoadResult()
                    for _ in 0..<warmup { await timed(&connection, group: group, into: &discard) }
                }
            }
            try await tasks.waitForAll()
        }
        let issued = Counter()
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = duration.map { start + $0 }
        let pace = LoopDriver.Pace.closed(issued: issued, count: count, deadline: deadline)
        var total = try await merged(opened.map { LoopDriver.run($0, pace: pace) })
        for connection in opened { await connection.close() }
        total.seconds = milliseconds(clock.now - start) / 1000
        return total
    }

    /// The results of every connection, merged.
    private static func merged(_ futures: [EventLoopFuture<LoadResult>]) async throws -> LoadResult {
        var total = LoadResult()
        for future in futures { total.merge(try await future.get()) }
        return total
    }
}

extension Load {
    /// `connections` keep-alive connections sending `rate` requests a second in all, each on its own fixed schedule,
    /// for `duration`: the latency at that load, below saturation (an open loop, as wrk2 measures).
    ///
    /// A request whose connection was still busy at its scheduled time is timed from that time, so a slow answer
    /// counts against the requests it delayed too (no coordinated omission).
    static func paced(
        _ target: Target, kind: CallKind, connections: Int, rate: Double, duration: Duration, group: any EventLoopGroup
    ) async throws -> LoadResult {
        var opened: [Connection] = []
        for _ in 0..<connections { opened.append(try await Connection.open(target, kind: kind, group: group)) }
        let interval = Duration.nanoseconds(Int64(Double(connections) / rate * 1e9))
        let clock = ContinuousClock()
        let start = clock.now + .milliseconds(50)
        let end = start + duration
        // Connections are spread evenly over one interval.
        var total = try await merged(
            opened.enumerated().map { index, connection in
                LoopDriver.run(connection, pace: .paced(first: start + interval * Double(index) / Double(connections), interval: interval, end: end))
            })
        for connection in opened { await connection.close() }
        total.seconds = milliseconds(duration)
        return total
    }
}

/// A shared request counter.
final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
