import Foundation
import KeyholdClient
import KeyholdOrchestration
import KeyholdServer
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// A tenant's state tree is its own to shape, and `sandbox status` measures it: a hostile tenant that grows a huge
/// tree and asks for its status in a loop from many clients costs one status read and one walk at a time of its own,
/// and another tenant's starts keep their latency.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct SandboxStatusFloodTests {
    /// Fills its state with 40,000 files in 40 directories, says so, then waits.
    static let fillingAgent =
        #"/usr/bin/python3 -c "import os; d = os.environ['STATE_DIRECTORY'] + '/tree'; [os.makedirs(f'{d}/{i // 1000}', exist_ok=True) or open(f'{d}/{i // 1000}/{i}', 'w').close() for i in range(40000)]; print('filled', flush=True); os.execv('/bin/sleep', ['sleep', 'infinity'])""#

    /// The median time, in ms, of `count` start-and-stop cycles of `tenant`'s sandbox through the admin API.
    static func medianStartAndStop(_ admin: AdminClient, tenant: String, count: Int) async throws -> Double {
        var samples: [Double] = []
        for _ in 0..<count {
            let started = ContinuousClock.now
            _ = try await admin.send("POST", "/v1/tenants/\(tenant)/sandbox/start")
            _ = try await admin.send("POST", "/v1/tenants/\(tenant)/sandbox/stop")
            let elapsed = ContinuousClock.now - started
            samples.append(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        }
        return samples.sorted()[samples.count / 2]
    }

    @Test func aTenantAskingForItsHugeStatesStatusInALoopLeavesAnothersStartsTheirLatency() async throws {
        let sandboxes = try SandboxHarness()
        let neighbour = SandboxHarness.tenantName("nbr")
        try sandboxes.tenant(neighbour, plan: "managed", agent: "/bin/sleep infinity")
        let hostile = SandboxHarness.tenantName("tree")
        try sandboxes.tenant(hostile, plan: "managed", agent: Self.fillingAgent)
        try #require(try sandboxes.start(hostile).status == 0)
        _ = try await sandboxes.waitForLog(hostile, containing: "filled", timeout: 120)
        let admin = AdminClient(socketPath: sandboxes.keyhold.socketPath)
        let before = try await Self.medianStartAndStop(admin, tenant: neighbour, count: 9)

        // Four clients ask for the hostile tenant's status as fast as the daemon answers, while the neighbour starts.
        let asking = Task {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        var asked = 0
                        // Until the neighbour's cycles are done (cancelled): an answer cut short by it is not counted.
                        while !Task.isCancelled, (try? await admin.send("GET", "/v1/tenants/\(hostile)/sandbox")) != nil { asked += 1 }
                        return asked
                    }
                }
                return await group.reduce(0, +)
            }
        }
        let during = try await Self.medianStartAndStop(admin, tenant: neighbour, count: 9)
        asking.cancel()
        let asked = await asking.value
        #expect(asked >= 7, "the hostile tenant's status was asked \(asked) times")
        #expect(during <= 2 * before, "the neighbour's start and stop went from \(before) ms to \(during) ms")
        let status = try sandboxes.keyhold.cli(["sandbox", "status", hostile])
        #expect(status.status == 0 && status.stdout.contains("state"), "\(status.output)")
        _ = try sandboxes.keyhold.cli(["sandbox", "stop", hostile])
    }
}
