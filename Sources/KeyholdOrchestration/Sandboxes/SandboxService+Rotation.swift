import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import KeyholdVault
import Synchronization

extension SandboxService {
    /// Rolls every running sandbox of the tenant onto the pending credential, blue/green.
    ///
    /// Each step is recorded before it is taken (`rotations.step`), so that `recoverAfterRestart` can finish or
    /// undo a rotation interrupted by a crash. At every instant at least one of the tenant's agents runs.
    func rollOut(
        _ rotation: RotationRecord, tenant: TenantRecord, pendingKey: KeyVersionRecord?, previousKey: KeyVersionRecord?, actor: String
    )
        async throws -> AdminAPI.Rotation
    {
        try await locks.withLock(tenant.name) {
            let started = ContinuousClock.now
            let old = try await self.store.read { tx in
                try tx.liveSandboxes(tenantID: tenant.id).filter { $0.state == .running }
            }
            try self.requireOurs(old, tenant: tenant.name)
            if !old.isEmpty { _ = try self.requireSystemd() }
            if let pendingKey, !old.isEmpty,
                try await self.store.read({ tx in try old.allSatisfy { try tx.hasPlaceholders(sandboxID: $0.id) } })
            {
                // Brokered: each running agent's placeholder stands for whichever version is active, so activating the new
                // one is the whole rotation; the agents' next requests carry it, with no second unit and no restart.
                try await self.finish(rotation, tenant: tenant, actor: actor, outcome: .ok)
                // What `sandbox status` shows: the version the agents' requests now carry.
                let provider = pendingKey.provider.rawValue
                try await self.store.write { tx in
                    for sandbox in old {
                        let versions = sandbox.keyVersions.map { $0.hasPrefix(provider + ":") ? "\(provider):\(pendingKey.version)" : $0 }
                        try tx.updateSandbox(sandbox.id, state: .running, keyVersions: versions)
                    }
                }
                return AdminAPI.Rotation(
                    provider: rotation.provider, fromVersion: previousKey?.version, toVersion: pendingKey.version,
                    fromFingerprint: previousKey?.sealed.fingerprint, toFingerprint: pendingKey.sealed.fingerprint, oldUnits: old.map(\.unit),
                    newUnits: [], seconds: (ContinuousClock.now - started) / .seconds(1), readinessSeconds: 0)
            }
            try await self.store.write { tx in
                try tx.updateRotation(rotation.id, step: .startingNew, oldUnits: old.map(\.unit))
            }
            let newUnits = UnitList()
            var readiness = Duration.zero
            do {
                for _ in old {
                    let rollout = RolloutStart(pendingKey: pendingKey) { sandbox in
                        let units = newUnits.append(sandbox.unit)
                        try await self.store.write { tx in
                            try tx.updateRotation(rotation.id, step: .startingNew, newUnits: units)
                        }
                    }
                    let new = try await self.startLocked(tenant: tenant.name, actor: actor, restarts: 0, rollout: rollout)
                    await self.crashPoints.reach("rotation.new-unit-starting")
                    let waitStarted = ContinuousClock.now
                    try await self.waitUntilReady(unit: new.unit, notify: tenant.agentNotify)
                    readiness += ContinuousClock.now - waitStarted
                }
                try await self.store.write { tx in try tx.updateRotation(rotation.id, step: .newReady) }
                await self.crashPoints.reach("rotation.after-new-ready")
            } catch {
                try await self.rollBack(rotation, tenant: tenant, newUnits: newUnits.units, actor: actor, reason: "\(error)")
                let kept = old.map(\.unit).joined(separator: ", ")
                throw KeyholdError.failed(
                    "rotation of \(tenant.name)'s \(rotation.provider) failed: \(error)"
                        + (old.isEmpty ? "" : "; the old agent keeps running (\(kept))")
                        + (pendingKey == nil ? "" : "; the new key version is marked failed")
                )
            }
            try await self.store.write { tx in try tx.updateRotation(rotation.id, step: .stoppingOld) }
            await self.crashPoints.reach("rotation.stopping-old")
            let oldIDs = Set(old.map(\.id))
            _ = try await self.stopLocked(tenant: tenant, actor: actor, reason: "rotated to a new credential") { oldIDs.contains($0.id) }
            try await self.finish(rotation, tenant: tenant, actor: actor, outcome: .ok)
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            return AdminAPI.Rotation(
                provider: rotation.provider, fromVersion: previousKey?.version, toVersion: pendingKey?.version,
                fromFingerprint: previousKey?.sealed.fingerprint, toFingerprint: pendingKey?.sealed.fingerprint, oldUnits: old.map(\.unit),
                newUnits: newUnits.units, seconds: seconds, readinessSeconds: readiness / .seconds(1)
            )
        }
    }

    /// Ready means: the start job finished after READY=1 (notify agents), or the unit stayed up for the readiness window.
    /// The window is watched through systemd's signals: the unit's end is heard as it happens, nothing is polled.
    func waitUntilReady(unit: String, notify: Bool) async throws {
        let systemd = try requireSystemd()
        followUnits()
        // Until the signals are followed a change could go unheard.
        await unitStates.untilFollowing(atMost: configuration.jobTimeout)
        let changes = unitStates.changes(of: unit)
        let deadline = ContinuousClock.now + (notify ? .zero : configuration.readinessWindow)
        try await requireActive(unit: unit, systemd: systemd)
        guard !notify else { return }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await Task.sleep(until: deadline) }
            group.addTask {
                for await event in changes {
                    switch event {
                    case .changed(_, let state) where state == "active": continue
                    case .changed, .removed, .resynchronise: try await self.requireActive(unit: unit, systemd: systemd)
                    }
                }
                try await Task.sleep(until: deadline)  // no more signals: the window decides
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Throws unless systemd says the unit is `active`.
    private func requireActive(unit: String, systemd: any SystemdControl) async throws {
        let status = try await systemd.unitStatus(name: unit)
        guard let status, status.activeState == "active" else {
            let exit = status.map { "\($0.activeState), result=\($0.result ?? "?"), status=\($0.execMainStatus.map(String.init) ?? "?")" } ?? "gone"
            throw KeyholdError.failed("the new agent \(unit) did not stay up (\(exit)): see `keyhold sandbox logs`")
        }
    }

    /// Activates the new version, retires the older ones, and records the rotation as finished.
    func finish(_ rotation: RotationRecord, tenant: TenantRecord, actor: String, outcome: AuditOutcome) async throws {
        try await store.write { tx in
            var events: [AuditEvent] = []
            let keys = try rotation.keyProvider.map { try tx.keyVersions(tenantID: tenant.id, provider: $0) } ?? []
            if let to = rotation.toVersion, let new = keys.first(where: { $0.version == to }) {
                try tx.setKeyVersionState(new.id, state: .active)
                let previous = keys.first { $0.version == rotation.fromVersion }
                for old in keys where old.state == .active && old.version < to {
                    try tx.setKeyVersionState(old.id, state: .retired)
                    events.append(
                        AuditEvent(
                            actor: actor, action: .keyRetire, tenant: tenant.name, provider: rotation.provider, keyVersion: old.version,
                            fingerprint: old.sealed.fingerprint,
                            details: ["replaced_by": String(to), "replaced_by_fingerprint": new.sealed.fingerprint]
                        )
                    )
                }
                events.insert(
                    AuditEvent(
                        actor: actor, action: .keyRotate, tenant: tenant.name, provider: rotation.provider, keyVersion: to,
                        fingerprint: new.sealed.fingerprint, outcome: outcome,
                        details: [
                            "from_version": rotation.fromVersion.map(String.init) ?? "-", "from_fingerprint": previous?.sealed.fingerprint ?? "-",
                            "new_units": rotation.newUnits.joined(separator: ","),
                        ]
                    ),
                    at: 0
                )
            } else {
                events.append(AuditEvent(actor: actor, action: .keyRotate, tenant: tenant.name, provider: rotation.provider, outcome: outcome))
            }
            try tx.updateRotation(rotation.id, step: .finished, state: .done)
            for event in events { try tx.appendAudit(event) }
        }
        Telemetry.rotationFinished(outcome: "done")
    }

    /// Stops the new units, marks the new version failed and the rotation failed; the old units are untouched.
    func rollBack(_ rotation: RotationRecord, tenant: TenantRecord, newUnits: [String], actor: String, reason: String) async throws {
        let names = Set(newUnits)
        _ = try? await stopLocked(tenant: tenant, actor: actor, reason: "rotation rolled back") { names.contains($0.unit) }
        if let systemd {
            for unit in newUnits { try? await systemd.stopUnit(name: unit, timeout: configuration.jobTimeout) }
        }
        try await store.write { tx in
            if let to = rotation.toVersion,
                let provider = rotation.keyProvider,
                let new = try tx.keyVersions(tenantID: tenant.id, provider: provider).first(where: { $0.version == to })
            {
                try tx.setKeyVersionState(new.id, state: .failed)
            }
            try tx.updateRotation(rotation.id, step: .rolledBack, state: .failed, error: String(reason.prefix(500)))
            try tx.appendAudit(
                AuditEvent(
                    actor: actor, action: .keyRotate, tenant: tenant.name, provider: rotation.provider, keyVersion: rotation.toVersion,
                    outcome: .failed, details: ["reason": String(reason.prefix(300)), "kept_version": rotation.fromVersion.map(String.init) ?? "-"]
                )
            )
        }
        Telemetry.rotationFinished(outcome: "failed")
    }
}

/// The units a rollout has started so far, shared with the callback that records them.
final class UnitList: Sendable {
    private let list = Mutex<[String]>([])

    var units: [String] { list.withLock { $0 } }

    /// Appends and returns the whole list.
    func append(_ unit: String) -> [String] {
        list.withLock { list in
            list.append(unit)
            return list
        }
    }
}
