import BenchmarkSupport
import Glibc
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdTesting

extension Bench {
    /// One kind of timed start.
    enum Kind: CaseIterable {
        case floorBare, floorBus, floorRun, keyhold, keyholdManaged, keyholdBrokered, keyholdWarm
    }

    /// The figures of (a) and (b).
    struct StartFigures {
        var floorBare = Series(name: "(a0) floor without the network boundary")
        var floorBus = Series(name: "(a1) floor: D-Bus StartTransientUnit")
        var floorRun = Series(name: "(a2) floor: nsenter systemd-run (+ spawn)")
        var keyhold = Series(name: "(b)  keyhold: API start -> agent exec'd")
        var keyholdManaged = Series(name: "(b') keyhold, managed plan (proxy listener)")
        var keyholdBrokered = Series(name: "(b\") keyhold, BYOK with brokered keys")
        var keyholdWarm = Series(name: "(w)  keyhold, warm pool: API start -> exec'd")
        var keyholdWarmAPI = Series(name: "     of which: API call returned")
        var keyholdAPI = Series(name: "     of which: API call returned")
        var keyholdExecLag = Series(name: "     of which: API return -> agent exec'd")
        var statusRead = Series(name: "(i)  one unit status read (7 bus calls)")
        var stops = Series(name: "(s)  stop through the API (untimed above)")
        /// The API call's duration of each timed cold start, by unit.
        var apiTimes: [String: Duration] = [:]
        /// The same for the warm starts.
        var warmAPITimes: [String: Duration] = [:]
    }

    /// (a) and (b): `options.starts` timed starts of each kind, alternating (the order rotates every round), each unit
    /// stopped (untimed) before the next start.
    func measureStarts() async throws {
        print("\n(a)/(b) start latency: \(options.warmup) untimed + \(options.starts) timed starts of each kind, interleaved")
        var figures = StartFigures()
        var warm = StartFigures()
        for round in 0..<(options.warmup + options.starts) {
            let kinds = Kind.allCases
            let shift = round % kinds.count
            for kind in kinds[shift...] + kinds[..<shift] {
                // Every start finds the warm pool full (its refill after the previous warm start is not timed in another kind).
                try waitForWarmPool()
                if round < options.warmup {
                    try await start(kind, round: round, into: &warm)
                } else {
                    try await start(kind, round: round, into: &figures)
                }
            }
        }
        print(Series.header)
        for series in [
            figures.floorBare, figures.floorBus, figures.floorRun, figures.keyhold, figures.keyholdManaged, figures.keyholdBrokered,
            figures.keyholdAPI,
            figures.keyholdExecLag, figures.keyholdWarm, figures.keyholdWarmAPI, figures.statusRead,
        ] {
            print(series.row)
        }
        let overBus = figures.keyhold.median - figures.floorBus.median
        let overRun = figures.keyhold.median - figures.floorRun.median
        print("Keyhold minus floor, medians: \(milliseconds(overBus)) ms over (a1), \(milliseconds(overRun)) ms over (a2)")
        let steps = StepBreakdown(log: harness.daemonLog, apiTimes: figures.apiTimes)
        steps.print()
        let inSystemd = figures.floorBus.median - figures.floorBare.median
        let inDaemon = steps.median(of: "boundary") ?? 0
        print(
            "Network boundary (issue 10), medians: \(milliseconds(inSystemd)) ms in systemd ((a1) - (a0): namespace, firewall, mounts) + "
                + "\(milliseconds(inDaemon)) ms in the daemon (listeners, both plans) = \(milliseconds(inSystemd + inDaemon)) ms; target at most 10 ms -> "
                + "\(inSystemd + inDaemon <= 10 ? "met" : "NOT met")")
        print(figures.stops.row)
        let brokeredAdded = figures.keyholdBrokered.median - figures.keyhold.median
        print(
            "Brokered keys (issue 20): start with brokered delivery minus environment delivery, medians: \(milliseconds(brokeredAdded)) ms; "
                + "target at most 3 ms -> \(brokeredAdded <= 3 ? "met" : "NOT met")")
        let (warmMedian, warmP99) = (figures.keyholdWarm.median, figures.keyholdWarm.percentile(99))
        print(
            "Warm pool (issue 13): API call -> agent exec'd with its key, median \(milliseconds(warmMedian)) ms (cold (b): "
                + "\(milliseconds(figures.keyhold.median)) ms); target at most 5 ms median -> \(warmMedian <= 5 ? "met" : "NOT met"), "
                + "p99 at most 20 ms -> \(warmP99 <= 20 ? "met" : "NOT met") (\(milliseconds(warmP99)) ms)")
        print("Warm starts, the daemon's steps:")
        StepBreakdown(log: harness.daemonLog, apiTimes: figures.warmAPITimes).print()
        let p99 = figures.keyhold.percentile(99)
        print(
            "Target (issue 3): at most 5 ms median over the floor -> \(overBus <= 5 ? "met" : "NOT met") against (a1); "
                + "p99 under 150 ms -> \(p99 < 150 ? "met" : "NOT met") (\(milliseconds(p99)) ms)")
    }

    private func start(_ kind: Kind, round: Int, into figures: inout StartFigures) async throws {
        switch kind {
        case .floorBare:
            let unit = "bench-floor-bare-\(round).service"
            let begin = ContinuousClock.now
            _ = try manager.startTransientUnit(name: unit, properties: floorPropertiesWithoutBoundary, timeout: Self.jobTimeout)
            figures.floorBare.record(ContinuousClock.now - begin)
            try stopUnit(unit)
        case .floorBus:
            let unit = "bench-floor-bus-\(round).service"
            let begin = ContinuousClock.now
            _ = try manager.startTransientUnit(name: unit, properties: floorProperties, timeout: Self.jobTimeout)
            figures.floorBus.record(ContinuousClock.now - begin)
            let statusBegin = ContinuousClock.now
            let status = try manager.unitStatus(name: unit)
            figures.statusRead.record(ContinuousClock.now - statusBegin)
            guard status?.isActive == true else { throw BenchError("floor unit \(unit) is not active: \(String(describing: status))") }
            try stopUnit(unit)
        case .floorRun:
            let unit = "bench-floor-run-\(round).service"
            let argv = Spawn.inNamespace(
                of: systemdPID, ["/usr/bin/systemd-run"] + FloorUnit.systemdRunArguments(unit: unit, properties: floorProperties))
            let begin = ContinuousClock.now
            let result = try Spawn.run(argv)
            figures.floorRun.record(ContinuousClock.now - begin)
            guard result.status == 0, try manager.unitStatus(name: unit)?.isActive == true else {
                throw BenchError("systemd-run exited \(result.status): \(result.output.suffix(800))")
            }
            try stopUnit(unit)
        case .keyhold:
            let begin = ContinuousClock.now
            let sandbox = try await startSandbox("bench")
            let returned = ContinuousClock.now
            try waitForAgent(sandbox)
            let end = ContinuousClock.now
            figures.keyhold.record(end - begin)
            figures.keyholdAPI.record(returned - begin)
            figures.keyholdExecLag.record(end - returned)
            figures.apiTimes[sandbox.unit] = returned - begin
            try await stopSandbox("bench")
            figures.stops.record(ContinuousClock.now - end)
        case .keyholdManaged:
            figures.keyholdManaged.record(try await timedStart("bench-m", into: &figures))
        case .keyholdBrokered:
            figures.keyholdBrokered.record(try await timedStart("bench-b", into: &figures))
        case .keyholdWarm:
            let begin = ContinuousClock.now
            let sandbox = try await startSandbox("bench-w")
            let returned = ContinuousClock.now
            try waitForAgent(sandbox)
            figures.keyholdWarm.record(ContinuousClock.now - begin)
            figures.keyholdWarmAPI.record(returned - begin)
            figures.warmAPITimes[sandbox.unit] = returned - begin
            guard sandbox.unit.hasPrefix("keyhold_warm-") else { throw BenchError("the warm start took no waiting unit: \(sandbox.unit)") }
            try await stopSandbox("bench-w")
        }
    }

    /// One cold start of `tenant` through the API until its agent exec'd (its API time kept for the step breakdown),
    /// then an untimed stop.
    /// - Returns: API call to agent exec'd.
    private func timedStart(_ tenant: String, into figures: inout StartFigures) async throws -> Duration {
        let begin = ContinuousClock.now
        let sandbox = try await startSandbox(tenant)
        let returned = ContinuousClock.now
        try waitForAgent(sandbox)
        let took = ContinuousClock.now - begin
        figures.apiTimes[sandbox.unit] = returned - begin
        try await stopSandbox(tenant)
        return took
    }

    /// Waits (bounded: 10 s) until the warm plan's pool has all its units waiting.
    func waitForWarmPool() throws {
        let deadline = ContinuousClock.now + .seconds(10)
        let tag = SandboxConfiguration.installationTag(stateDirectory: harness.stateDirectory)
        let pattern = SandboxConfiguration.warmUnitPattern(installationTag: tag, plan: Self.warmPlan)
        while true {
            let active = try manager.listUnits(matching: pattern).filter {
                try manager.unitStatus(name: $0)?.isActive == true
            }
            if active.count >= Self.warmPoolSize { return }
            guard ContinuousClock.now < deadline else {
                throw BenchError("the warm pool has \(active.count) of \(Self.warmPoolSize) units after 10 s")
            }
            usleep(1_000)
        }
    }

    /// Polls (every 50 µs) until the unit's main process is no longer `keyhold-exec`: it read its key, loaded seccomp
    /// and exec'd the agent.
    func waitForAgent(_ sandbox: AdminAPI.Sandbox) throws {
        guard let pid = sandbox.mainPID, pid > 0 else { throw BenchError("the start of \(sandbox.unit) reported no main pid") }
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            guard let command = ProcFiles.command(of: Int32(pid), root: procRoot) else {
                throw BenchError("the main process \(pid) of \(sandbox.unit) is gone: see `keyhold sandbox logs \(sandbox.tenant)`")
            }
            if command != "keyhold-exec" { return }
            guard ContinuousClock.now < deadline else { throw BenchError("\(sandbox.unit) still runs keyhold-exec after 10 s") }
            usleep(50)
        }
    }
}
