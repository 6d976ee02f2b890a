import AsyncHTTPClient
import Foundation
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import NIOCore
import NIOHTTP1
import Testing

/// One sandbox cannot take the daemon's connections: its listener holds at most 512 at once, and while a hostile agent
/// holds them all, another tenant's calls keep their latency.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxConnectionBudgetTests {
    /// The median of `count` model-list calls through the daemon's own proxy port with a neighbour's token, in ms.
    static func medianLatency(port: Int, token: String, count: Int) async throws -> Double {
        var samples: [Double] = []
        for _ in 0..<count {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/models")
            request.headers.add(name: "authorization", value: "Bearer \(token)")
            let started = ContinuousClock.now
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            let elapsed = ContinuousClock.now - started
            guard response.status.code == 200 else { throw HarnessError("the neighbour's call answered \(response.status.code)") }
            samples.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        }
        return samples.sorted()[samples.count / 2]
    }

    @Test func aSandboxHoldsAtMost512ConnectionsAndItsNeighbourKeepsItsLatency() async throws {
        let assets = try TestAssets()
        defer { assets.remove() }
        let proxyPort = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: ["--proxy", "127.0.0.1:\(proxyPort)"])
        // A neighbour on the managed plan, calling through the daemon (its own listener shares the daemon's descriptors
        // and event loops with the hostile one).
        let neighbour = SandboxHarness.tenantName("nbr")
        try sandboxes.tenant(neighbour, plan: "managed", agent: "/bin/sleep infinity")
        let store = try sandboxes.keyhold.openStore()
        let token = try await store.write { tx in
            let tenant = try tx.tenant(named: neighbour)
            return try tx.createProxyToken(tenantID: tenant.id, sandboxID: try tx.insertSandbox(tenantID: tenant.id, tenantName: tenant.name).id)
        }
        let before = try await Self.medianLatency(port: proxyPort, token: token, count: 100)

        let hostile = SandboxHarness.tenantName("hog")
        try sandboxes.tenant(hostile, plan: "managed", agent: "\(TestAssets.python) \(assets.directory)/connection_hog.py")
        let start = try sandboxes.start(hostile)
        try #require(start.status == 0, "\(start.stderr)")
        _ = try await sandboxes.waitForLog(hostile, containing: "budget holding", timeout: 90)
        let served = try await sandboxes.waitForLog(hostile, containing: "budget served=")
        #expect(served.contains("budget served=512 refused=88"), "\(served)")
        let reopened = try await sandboxes.waitForLog(hostile, containing: "budget reopened=")
        #expect(reopened.contains("budget reopened=100"), "connections freed make room again: \(reopened)")
        #expect(sandboxes.keyhold.daemonLog.contains("more than 512 connections open to the metering proxy"))

        // While the hostile agent holds its 512, the neighbour's calls keep their latency.
        let during = try await Self.medianLatency(port: proxyPort, token: token, count: 100)
        #expect(during <= 2 * before, "the neighbour's median went from \(before) ms to \(during) ms")
        #expect(try sandboxes.keyhold.cli(["sandbox", "stop", hostile]).status == 0)
    }
}
