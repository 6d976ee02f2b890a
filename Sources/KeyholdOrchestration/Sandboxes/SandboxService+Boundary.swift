import Foundation
import KeyholdCore
import KeyholdEgress
import KeyholdSandbox
import KeyholdStore
import KeyholdVault
import Logging

extension SandboxService {
    /// The tenant's persistent agent state.
    func agentState(tenant: String) -> AgentStateDirectory {
        AgentStateDirectory(tenant: tenant, hostPath: { [boundary] in boundary.hostPath($0) })
    }

    /// Deletes the tenant's agent state (`keyhold tenant delete`), once its sandboxes are stopped.
    /// - Returns: the bytes it held.
    func removeAgentState(tenant: String) async throws -> UInt64 {
        let state = agentState(tenant: tenant)
        stateMeasurements.forget(tenant: tenant)
        do {
            return try await Blocking.run { try state.remove() }
        } catch {
            throw KeyholdError.unavailable(
                "cannot delete the agent state of '\(tenant)' at \(state.privatePath) (\(error)); nothing else was deleted")
        }
    }

    /// Where a BYOK sandbox may connect: its keys' API hosts, its plan's `egress_allow:`, its tenant's own entries.
    /// A managed sandbox's only way out is the metering proxy: its policy is empty.
    static func egressPolicy(plan: Plan, keys: [KeyVersionRecord], tenantEgress: [EgressRule]) -> EgressPolicy {
        guard plan.kind == .byok else { return EgressPolicy(entries: []) }
        // Brokered: the keys' requests leave from the daemon. Their HTTPS hosts stay listed so that a client that ignores
        // its base URL finds them by name, but the gateway never splices there: it terminates and the key broker answers.
        let bases = keys.compactMap { key -> (provider: String, baseURL: String)? in
            guard let url = key.baseURL ?? key.provider.defaultBaseURL else { return nil }
            if plan.isBrokered && !url.lowercased().hasPrefix("https://") { return nil }
            return (key.provider.rawValue, url)
        }
        return EgressPolicy.of(keyBaseURLs: bases, plan: plan, tenant: tenantEgress)
    }

    /// The tenant's current policy, from the database (after `allow-egress`, `deny-egress` or a key change).
    func currentEgressPolicy(tenant name: String) async throws -> EgressPolicy {
        try await store.read { tx in
            let tenant = try tx.tenant(named: name)
            return try Self.egressPolicy(of: tenant, plan: try self.plans.effectivePlan(for: tenant), in: tx)
        }
    }

    /// The policy of the tenant's sandbox as the database has it: its active keys of its plan's providers, the plan's
    /// and the tenant's own entries.
    static func egressPolicy(of tenant: TenantRecord, plan: Plan, in tx: StoreTransaction) throws -> EgressPolicy {
        let allowed = Set(plan.providers)
        let keys = try tx.activeKeys(tenantID: tenant.id).filter { allowed.contains($0.provider) }
        return egressPolicy(plan: plan, keys: keys, tenantEgress: try tx.egressRules(tenantID: tenant.id))
    }

    /// Applies the tenant's current policy to its running sandboxes' gateways at once.
    func refreshEgress(tenant name: String) async throws {
        boundary.update(tenant: name, policy: try await currentEgressPolicy(tenant: name))
    }

    /// Measures the agent's state against the plan's `state_max:`. Over it, the sandbox starts with its state
    /// read-only (writes fail with EROFS, as on a full disk) and the audit log says so.
    /// - Returns: whether the state must be read-only.
    func checkStateLimit(_ state: AgentStateDirectory, tenant: TenantRecord, plan: Plan, unit: String, actor: String) async throws -> Bool {
        let used = await stateMeasurements.measure(state)
        guard used > plan.sandbox.stateMaxBytes else { return false }
        logger.warning("\(unit): the agent's state holds \(used) bytes, over the plan's state_max (\(plan.sandbox.stateMaxBytes)): mounted read-only")
        _ = try await store.write { tx in
            try tx.appendAudit(
                AuditEvent(
                    actor: actor, action: .sandboxStateLimit, tenant: tenant.name, outcome: .readOnly, unit: unit,
                    details: ["bytes": String(used), "state_max": String(plan.sandbox.stateMaxBytes)]
                )
            )
        }
        return true
    }

    /// Adds what only this daemon knows to a sandbox's API view: its network, its destinations, its state's size.
    func withBoundary(_ sandbox: AdminAPI.Sandbox, plan: Plan?) async -> AdminAPI.Sandbox {
        var sandbox = sandbox
        if let open = boundary.describe(unit: sandbox.unit) {
            sandbox.network = open.network
            sandbox.egress = open.egress
            sandbox.egressRefused = open.refused
        } else if ["running", "starting"].contains(sandbox.state) {
            sandbox.network = "private; no way out open on this daemon (it restarts it on its next pass)"
        }
        let state = agentState(tenant: sandbox.tenant)
        sandbox.stateDirectory = state.pathInSandbox
        // A status read shows a recent measurement: asking in a loop walks the tree no more than once in 30 s.
        sandbox.stateBytes = await stateMeasurements.recent(state)
        sandbox.stateMaxBytes = plan?.sandbox.stateMaxBytes
        return sandbox
    }

    /// After a daemon restart (and at each reconciler pass), reopens the way out of each sandbox still running
    /// without one: its listeners died with the old daemon; the agent finds them again within one pass.
    /// - Parameter live: the live sandboxes, as just read.
    func reopenBoundaries(systemd: any SystemdControl, live: [(tenant: String, sandbox: SandboxRecord)]) async throws {
        for (tenantName, sandbox) in live where sandbox.state == .running && !boundary.isOpen(unit: sandbox.unit) {
            try await locks.withLock(tenantName) {
                // Under the tenant's lock, as it is now: a stop or a restart may have happened since the read.
                guard let current = try await self.store.read({ tx in try tx.sandbox(id: sandbox.id) }),
                    current.state == .running, !self.boundary.isOpen(unit: sandbox.unit)
                else { return }
                let unit = sandbox.unit
                guard let status = try await systemd.unitStatus(name: unit), status.isActive, status.mainPID > 0 else { return }
                let plan = try await self.store.read { tx in try self.plans.effectivePlan(for: try tx.tenant(named: tenantName)) }
                let policy = try await self.currentEgressPolicy(tenant: tenantName)
                // Its placeholders outlive the daemon: the broker inside it serves them again.
                let (brokered, sealedAuthority) = try await self.store.read { tx in
                    (try tx.hasPlaceholders(sandboxID: sandbox.id), try tx.sandboxAuthority(sandboxID: sandbox.id))
                }
                // Its authority too: the agent trusts it already, and its secrets are served on.
                let (authority, secrets) = try await self.restoreAuthority(sealedAuthority, tenant: tenantName, sandbox: sandbox)
                let deadline = ContinuousClock.now + self.configuration.jobTimeout
                // Whether it was started read-only is not recorded: over the limit now means it was (or will be restarted so).
                let state = self.agentState(tenant: tenantName)
                let readOnly = await self.stateMeasurements.measure(state) > plan.sandbox.stateMaxBytes
                do {
                    try await Blocking.run {
                        try self.boundary.open(
                            unit: unit, tenant: tenantName, plan: plan, policy: policy, mainPID: status.mainPID, stateReadOnly: readOnly,
                            deadline: deadline, brokeredSandboxID: brokered ? sandbox.id : nil, secrets: secrets, authority: authority)
                    }
                    self.logger.info("\(unit): network boundary reopened")
                } catch {
                    self.logger.error("\(unit): cannot reopen its network boundary: \(error)")
                }
            }
        }
    }

    /// A running brokered sandbox's authority, unsealed, and what its gateway asks about its tenant's secrets.
    private func restoreAuthority(
        _ sealed: (certificate: String, sealed: SealedKey, binding: KeyBinding)?, tenant tenantName: String, sandbox: SandboxRecord
    ) async throws -> (SandboxAuthority?, SandboxSecretBroker?) {
        guard let sealed else { return (nil, nil) }
        let key = try vaults.current.open(sealed.sealed, binding: sealed.binding)
        defer { key.wipe() }
        let authority = try key.withBytes { try SandboxAuthority(certificatePEM: sealed.certificate, privateKey: $0) }
        let tenant = try await store.read { tx in try tx.tenant(named: tenantName) }
        return (authority, try await secretBroker(tenant: tenant, sandboxID: sandbox.id, unit: sandbox.unit))
    }

    /// Measures the state of running sandboxes every `stateCheckInterval`: one over its plan's `state_max:` is restarted
    /// with its state read-only (audited), so that an agent cannot fill the host's disk for longer than one interval.
    func enforceStateLimits(live: [(tenant: String, sandbox: SandboxRecord)]) async throws {
        for (tenantName, sandbox) in live where sandbox.state == .running {
            guard boundary.stateCheckDue(unit: sandbox.unit, interval: configuration.stateCheckInterval) else { continue }
            do {
                try await enforceStateLimit(of: sandbox, tenant: tenantName)
            } catch {
                // One tenant's failure (deleted meanwhile, a restart that failed and was audited) does not stop the others'.
                logger.error("\(sandbox.unit): enforcing its state limit: \(error)")
            }
        }
    }

    private func enforceStateLimit(of sandbox: SandboxRecord, tenant tenantName: String) async throws {
        let state = agentState(tenant: tenantName)
        let used = await stateMeasurements.measure(state)
        let tenant = try await store.read { tx in try tx.tenant(named: tenantName) }
        let plan = try plans.effectivePlan(for: tenant)
        guard used > plan.sandbox.stateMaxBytes else { return }
        logger.warning("\(sandbox.unit): its state holds \(used) bytes, over state_max (\(plan.sandbox.stateMaxBytes)): restarting it read-only")
        try await locks.withLock(tenantName) {
            guard let current = try await self.store.read({ tx in try tx.sandbox(id: sandbox.id) }), current.state == .running
            else { return }
            _ = try await self.stopLocked(tenant: tenant, actor: Self.reconcilerActor, reason: "state over the plan's state_max") {
                $0.id == sandbox.id
            }
            _ = try await self.startLocked(tenant: tenantName, actor: Self.reconcilerActor, restarts: 0)
        }
    }
}
