import KeyholdCore
public import ServiceLifecycle

/// Keeps each plan's warm pool full: at start (after stopping what a previous daemon left), whenever a start took a
/// unit, and every few seconds to expire units that waited too long. Stops the waiting units when the daemon stops.
public struct WarmPoolKeeper: Service {
    let sandboxes: SandboxService

    public init(sandboxes: SandboxService) { self.sandboxes = sandboxes }
    /// How often waiting units are checked for expiry (and the pool for room) without a start to wake the keeper.
    var interval: Duration = .seconds(5)
    /// How long after a start took a unit the pool is refilled.
    var refillDelay: Duration = .milliseconds(200)

    public func run() async throws {
        guard sandboxes.systemd != nil else { return }
        // Whatever the plans say now: a previous daemon's waiting units serve no one.
        await sandboxes.stopLeftoverWarmUnits()
        let waits = sandboxes.plans.plans.compactMap { $0.sandbox.warmPool?.maxWaitSeconds }
        guard let shortestWait = waits.min() else { return }
        // A unit expires at most half its wait late.
        let interval = max(min(interval, .seconds(shortestWait) / 2), .milliseconds(200))
        let serial = TenantLocks()
        let tend: @Sendable () async -> Void = {
            _ = try? await serial.withLock("pool") { await sandboxes.tendWarmPool() }
        }
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await _ in sandboxes.warmPool.wakes {
                        // A moment first: the starts that took units (a burst, often) have the CPUs and systemd to
                        // themselves, and one refill serves the whole burst.
                        try? await Task.sleep(for: refillDelay)
                        await tend()
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        await tend()
                        try? await Task.sleep(for: interval)
                    }
                }
                await group.waitForAll()
            }
        }
        await sandboxes.stopWarmUnits(sandboxes.warmPool.takeAll(), reason: "the daemon stops")
    }
}
