import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import Logging

extension SandboxService {
    /// Takes a waiting unit of the plan's warm pool for one start; nil (a cold start) when the plan keeps none or
    /// none waits.
    func takeWarmUnit(plan: Plan) -> WarmPool.Unit? {
        guard plan.sandbox.warmPool != nil, systemd != nil else { return nil }
        while let unit = warmPool.take(plan: plan.id) {
            // A unit systemd says stopped (its keyhold-exec killed, say) serves no one.
            if let state = unitStates.activeState(of: unit.name), state != "active" {
                discardWarmUnits([unit], reason: "it was no longer running (\(state))")
                continue
            }
            Telemetry.warmPoolTake(plan: plan.id, hit: true)
            return unit
        }
        Telemetry.warmPoolTake(plan: plan.id, hit: false)
        return nil
    }

    /// Hands a waiting unit to the tenant: mounts its state in, opens its way out, writes the audit records (synced),
    /// then its keys and its agent's argv into the pipe keyhold-exec waits on. The unit was started ahead with the
    /// plan's limits and hardening; nothing of the tenant reached it before this call.
    func injectWarm(
        _ injection: Injection, into sandbox: SandboxRecord, unit: WarmPool.Unit, tenant: TenantRecord, plan: Plan, profile: SandboxProfile,
        systemd: any SystemdControl, actor: String, timing: inout StartTiming
    ) async throws -> AdminAPI.Sandbox {
        let pipe = unit.pipe
        let state = agentState(tenant: tenant.name)
        let deadline = ContinuousClock.now + configuration.jobTimeout
        let started = StartedUnit(name: unit.name, invocationID: unit.invocationID, mainPID: unit.mainPID)
        var injection = injection
        do {
            injection.stateReadOnly = try await checkStateLimit(state, tenant: tenant, plan: plan, unit: unit.name, actor: actor)
            let prepared = injection
            // The state's mount, the way out and the audit records at once; the keys only once all three are done.
            async let mounted = Self.outcome {
                // The state handed to the unit's user, then mounted by keyhold-mount; by systemd if that fails.
                let attached = try await Blocking.run { () throws -> Result<Void, any Error> in
                    do {
                        try state.prepare(owner: unit.uid)
                    } catch {
                        throw KeyholdError.unavailable(
                            "cannot hand the agent state of '\(tenant.name)' (\(state.privatePath)) to its sandbox (\(error)): no key was injected")
                    }
                    return Result {
                        try self.namespaces.attach(
                            unit: unit.name, mainPID: unit.mainPID, source: state.privatePath, destination: state.pathInSandbox,
                            readOnly: prepared.stateReadOnly)
                    }
                }
                if case .failure(let error) = attached {
                    // systemd's way: slower (a child forked per call), same result.
                    self.logger.warning("\(unit.name): \(error); mounting the state with systemd's BindMountUnit instead")
                    try await systemd.bindMountUnit(
                        name: unit.name, source: state.privatePath, destination: state.pathInSandbox, readOnly: prepared.stateReadOnly)
                }
            }
            async let opened = Blocking.run {
                Result<Void, any Error> {
                    _ = try self.boundary.writeNameFiles(unit: unit.name, policy: prepared.policy, authority: prepared.authority)
                    try self.boundary.open(
                        unit: unit.name, tenant: tenant.name, plan: plan, policy: prepared.policy, mainPID: unit.mainPID,
                        stateReadOnly: prepared.stateReadOnly, deadline: deadline, brokeredSandboxID: prepared.brokeredSandboxID,
                        secrets: prepared.secrets, authority: prepared.authority)
                }
            }
            async let recorded = Blocking.run {
                Result<Void, any Error> {
                    try self.recordInjection(prepared, sandbox: sandbox, tenant: tenant, plan: plan, started: started, actor: actor, pipe: pipe)
                }
            }
            // All three finish before any error is thrown: nothing runs on behind the clean-up below.
            let results = try await [mounted, opened, recorded]
            for result in results { try result.get() }
            timing.mark("state-boundary-audit")
            try await Blocking.run {
                try self.writePayload(prepared, tenant: tenant.name, profile: profile, agentArguments: tenant.agent, to: pipe)
            }
            timing.mark("payload")
        } catch {
            pipe.closeWriteEnd()
            boundary.close(unit: unit.name)
            await stopAndForget(unit: unit.name, systemd: systemd)
            throw error
        }
        timing.log(unit: unit.name, logger: logger)
        return Self.running(sandbox, started: started, keyVersions: injection.versions, tenant: tenant.name)
    }

    /// What `body` ended with, as a value: for work run beside other work whose errors are thrown only once all ended.
    private static func outcome(_ body: @Sendable () async throws -> Void) async -> Result<Void, any Error> {
        do {
            try await body()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Starts one unit for the plan's warm pool and adds it there once keyhold-exec waits on its pipe.
    func startWarmUnit(plan: Plan, systemd: any SystemdControl) async throws {
        let profile = try profiles.profile(named: plan.sandbox.profile, in: configuration.profilesDirectory)
        guard FileManager.default.isExecutableFile(atPath: configuration.execPath) else {
            throw KeyholdError.unavailable("keyhold-exec is missing at \(configuration.execPath): build it or pass --exec-path")
        }
        let (name, user) = WarmPool.newIdentity(installationTag: configuration.installationTag, plan: plan.id)
        let pipe = try InjectionPipe()
        do {
            let files = try boundary.writeNameFiles(unit: name, policy: EgressPolicy(entries: []))
            let properties = SandboxUnit.pooledProperties(
                plan: plan, profile: profile, user: user, execPath: configuration.execPath, stdinDescriptor: pipe.readEnd, hostsFile: files.hosts,
                resolvConfFile: files.resolvConf, trustBundleFile: SandboxBoundary.hasTrustBundle ? files.trustBundle : nil)
            let started = try await systemd.startTransientUnit(
                name: name, properties: properties, timeout: configuration.jobTimeout, whenForked: nil)
            pipe.closeReadEnd()
            guard let uid = namespaces.owner(unit: name, mainPID: started.mainPID) else {
                throw KeyholdError.unavailable("the warm unit \(name) has no main process: see `journalctl -u \(name)`")
            }
            let deadline = ContinuousClock.now + configuration.jobTimeout
            try await Blocking.run { try self.boundTemporaryDirectories(unit: name, mainPID: started.mainPID, plan: plan, deadline: deadline) }
            warmPool.add(
                WarmPool.Unit(
                    name: name, plan: plan.id, pipe: pipe, mainPID: started.mainPID, invocationID: started.invocationID, uid: uid, startedAt: .now))
        } catch {
            pipe.closeReadEnd()
            pipe.closeWriteEnd()
            boundary.close(unit: name)
            await stopAndForget(unit: name, systemd: systemd)
            throw error
        }
    }

    /// Stops units taken out of the pool (expired, not needed, or taken by a start that did not happen), in the
    /// background: none of them ever had a tenant's key.
    func discardWarmUnits(_ units: [WarmPool.Unit], reason: String) {
        guard !units.isEmpty else { return }
        Task { await self.stopWarmUnits(units, reason: reason) }
    }

    /// Stops units taken out of the pool, then closes their pipes (keyhold-exec, if still there, reads no payload).
    func stopWarmUnits(_ units: [WarmPool.Unit], reason: String) async {
        guard let systemd else { return }
        for unit in units {
            await stopAndForget(unit: unit.name, systemd: systemd)
            unit.pipe.closeWriteEnd()
            boundary.close(unit: unit.name)
        }
        logger.info("stopped \(units.count) warm unit\(units.count == 1 ? "" : "s"): \(reason)")
    }

    /// Expires units that waited too long, gives room back to tenants' sandboxes on a full host, and starts units
    /// until each plan's pool is full (or the host is).
    func tendWarmPool() async {
        guard let systemd else { return }
        let pools = plans.plans.compactMap { plan in plan.sandbox.warmPool.map { (plan, $0) } }
        let maxWait = Dictionary(uniqueKeysWithValues: pools.map { ($0.0.id, Duration.seconds($0.1.maxWaitSeconds)) })
        let gone = warmPool.takeGone { [unitStates] unit in unitStates.activeState(of: unit.name).map { $0 != "active" } ?? false }
        if !gone.isEmpty { await stopWarmUnits(gone, reason: "they stopped while waiting (see their journal)") }
        let expired = warmPool.takeExpired(maxWait: maxWait)
        if !expired.isEmpty {
            Telemetry.warmPoolExpired(count: expired.count)
            await stopWarmUnits(expired, reason: "nobody took them within the plan's warm_pool_max_wait")
        }
        // A fenced host starts nothing.
        guard lease.fencedReason == nil else { return }
        var room = Int.max
        if let capacity = configuration.maxSandboxes {
            let live = (try? await store.read { [host = configuration.hostID] tx in try tx.allLiveSandboxes(host: host).count }) ?? capacity
            room = capacity - live - warmPool.total
            if room < 0 {
                await stopWarmUnits(warmPool.takeNewest(-room), reason: "the host needs the room for tenants' sandboxes (--max-sandboxes)")
            }
        }
        for (plan, policy) in pools {
            var missing = policy.size - (warmPool.counts[plan.id] ?? 0)
            while missing > 0, room > 0, !Task.isCancelled {
                do {
                    try await startWarmUnit(plan: plan, systemd: systemd)
                } catch {
                    logger.warning("cannot fill the warm pool of plan \(plan.id): \(error)")
                    break
                }
                missing -= 1
                room -= 1
            }
        }
    }

    /// Stops warm units a previous daemon of this installation left behind (their pipes closed with it: they can serve
    /// no one). Another installation's warm units on the same systemd are its own daemon's business.
    func stopLeftoverWarmUnits() async {
        guard let systemd else { return }
        do {
            let units = try await systemd.listUnits(
                matching: SandboxConfiguration.warmUnitPattern(installationTag: configuration.installationTag))
            let claimed = Set(try await store.read { tx in try tx.allLiveSandboxes().map(\.sandbox.unit) })
            let waiting = warmPool.names
            for unit in units where !claimed.contains(unit) && !waiting.contains(unit) {
                await stopAndForget(unit: unit, systemd: systemd)
                boundary.close(unit: unit)
            }
        } catch {
            logger.warning("cannot list the warm units left by a previous daemon: \(error)")
        }
    }

    /// Stops a unit and makes systemd forget it (best effort: a unit already gone is fine).
    private func stopAndForget(unit: String, systemd: any SystemdControl) async {
        try? await systemd.stopUnit(name: unit, timeout: configuration.jobTimeout)
        try? await systemd.resetFailedUnit(name: unit)
    }
}
