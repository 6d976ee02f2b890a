import Dispatch
import Foundation
import Glibc
import KeyholdCore
import Logging
import NIOCore
import Synchronization
import Testing

@testable import KeyholdEgress

/// One sandbox whose names never answer must not slow another sandbox's connections: the gateway's lookup threads
/// are shared, so each sandbox holds at most its share of them, and a free thread goes to whoever is next in turn.
struct FairLookupTests {
    /// The gateway's order of turns: a sandbox at its share waits while others are served, and turns alternate.
    @Test func aSandboxAtItsShareWaitsWhileOthersAreServedInTurn() {
        let sandboxes = [NSObject(), NSObject(), NSObject()]
        let (hostile, quiet, other) = (ObjectIdentifier(sandboxes[0]), ObjectIdentifier(sandboxes[1]), ObjectIdentifier(sandboxes[2]))
        defer { withExtendedLifetime(sandboxes) {} }
        var turns = FairLookupPool.Turns()
        let job: FairLookupPool.Job = {}
        for _ in 0..<8 { turns.waiting[hostile, default: []].append(job) }
        turns.queue = [hostile]
        #expect(turns.next().count == FairLookupPool.threadsPerSandbox)
        #expect(turns.waiting[hostile]?.count == 8 - FairLookupPool.threadsPerSandbox)

        turns.waiting[quiet] = [job, job, job]
        turns.waiting[other] = [job]
        turns.queue += [quiet, other]
        let started = turns.next().map(\.0)
        #expect(started == [quiet, other, quiet], "each sandbox in turn, up to its share")
        #expect(turns.busy == 5)
        turns.finished(hostile)
        #expect(turns.next().map(\.0) == [hostile], "a freed share goes to the sandbox still waiting")
    }

    /// A real gateway on loopback: a hostile sandbox holds every lookup it may have on names that never answer, and
    /// a second sandbox's CONNECTs keep their latency (median at most twice the median without the hostile one).
    @Test func aSandboxWhoseNamesNeverAnswerDoesNotSlowAnothersConnections() async throws {
        let upstream = try ListeningSocket()
        defer { upstream.close() }
        let released = DispatchSemaphore(value: 0)
        let slowLookupsRunning = Atomic<Int>(0)
        let resolver = EgressResolver(staticEntries: [:]) { host, port in
            guard host.hasPrefix("slow") else { return [try SocketAddress(ipAddress: "127.0.0.1", port: port)] }
            slowLookupsRunning.add(1, ordering: .relaxed)
            _ = released.wait(timeout: .now() + 30)
            throw EgressRefusal("the name does not resolve (a stand-in for a resolver that never answers)")
        }
        let gateway = try EgressGateway(resolver: resolver, logger: Logger(label: "fair-lookup-test"))
        let rule = EgressRule(scheme: .https, host: "*.lookup.test", port: upstream.port, allowPrivate: true)
        let policy = EgressPolicy(entries: [EgressPolicy.Entry(rule: rule, source: "test")])
        let hostileRoute = EgressRoute(tenant: "hostile", unit: "hostile.service", policy: policy)
        let victimRoute = EgressRoute(tenant: "victim", unit: "victim.service", policy: policy)
        let hostileListener = try ListeningSocket()
        let victimListener = try ListeningSocket()
        let hostileChannel = try await gateway.serve(listeningSocket: hostileListener.take(), route: hostileRoute).get()
        let victimChannel = try await gateway.serve(listeningSocket: victimListener.take(), route: victimRoute).get()
        var hostileClients: [Int32] = []
        defer {
            for _ in 0..<EgressRoute.lookupLimit { released.signal() }
            for client in hostileClients { Glibc.close(client) }
            hostileChannel.close(promise: nil)
            victimChannel.close(promise: nil)
        }
        let connect = "CONNECT api.lookup.test:\(upstream.port) HTTP/1.1\r\nHost: api.lookup.test:\(upstream.port)\r\n\r\n"

        let alone = try (0..<40).map { _ in try Self.timedConnect(port: victimListener.port, request: connect) }

        for index in 0..<EgressRoute.lookupLimit {
            let client = try Self.open(port: hostileListener.port)
            hostileClients.append(client)
            let request = "CONNECT slow\(index).lookup.test:\(upstream.port) HTTP/1.1\r\n\r\n"
            _ = request.withCString { Glibc.write(client, $0, strlen($0)) }
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while hostileRoute.lookupsInFlight < EgressRoute.lookupLimit, ContinuousClock.now < deadline { await Task.yield() }
        try #require(hostileRoute.lookupsInFlight == EgressRoute.lookupLimit, "the hostile sandbox's lookups are all in flight")
        #expect(slowLookupsRunning.load(ordering: .relaxed) <= FairLookupPool.threadsPerSandbox)

        let beside = try (0..<40).map { _ in try Self.timedConnect(port: victimListener.port, request: connect) }
        let (aloneMedian, besideMedian) = (Self.median(alone), Self.median(beside))
        #expect(
            besideMedian <= aloneMedian * 2,
            "median CONNECT \(besideMedian) beside the hostile sandbox, \(aloneMedian) without it")
    }

    /// Connects to the gateway, sends `request`, and times until its `200 Connection established` arrives.
    static func timedConnect(port: Int, request: String) throws -> Duration {
        let client = try open(port: port)
        defer { Glibc.close(client) }
        let started = ContinuousClock.now
        _ = request.withCString { Glibc.write(client, $0, strlen($0)) }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while !answer.ends(with: Array("\r\n\r\n".utf8)) {
            let count = Glibc.read(client, &buffer, buffer.count)
            guard count > 0 else { throw ConnectFailure(answer: String(decoding: answer, as: UTF8.self)) }
            answer += buffer[0..<count]
        }
        let elapsed = ContinuousClock.now - started
        guard answer.starts(with: Array("HTTP/1.1 200".utf8)) else { throw ConnectFailure(answer: String(decoding: answer, as: UTF8.self)) }
        return elapsed
    }

    /// A blocking TCP connection to 127.0.0.1:`port` whose reads give up after 5 s.
    static func open(port: Int) throws -> Int32 {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = ListeningSocket.loopback(port: port)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            Glibc.close(client)
            throw ConnectFailure(answer: "connect to 127.0.0.1:\(port) failed")
        }
        return client
    }

    static func median(_ values: [Duration]) -> Duration { values.sorted()[values.count / 2] }

    struct ConnectFailure: Error, CustomStringConvertible {
        let answer: String
        var description: String { "the gateway did not answer 200 in time: \(answer.debugDescription)" }
    }
}

/// A TCP socket listening on 127.0.0.1 at a port of the kernel's choice. Connections complete in its backlog
/// without being accepted, which is all a gateway's upstream needs here.
final class ListeningSocket {
    private var fd: Int32
    let port: Int

    init() throws {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                Glibc.bind(socketFD, pointer, length) == 0 && listen(socketFD, 256) == 0 && getsockname(socketFD, pointer, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(socketFD)
            throw FairLookupTests.ConnectFailure(answer: "cannot listen on 127.0.0.1")
        }
        fd = socketFD
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    /// Gives the descriptor away (the gateway takes ownership).
    func take() -> Int32 {
        defer { fd = -1 }
        return fd
    }

    func close() { if fd >= 0 { Glibc.close(fd) } }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}

extension Array where Element: Equatable {
    fileprivate func ends(with suffix: [Element]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
