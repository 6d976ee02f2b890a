import Foundation
public import KeyholdCore
import KeyholdStore
import KeyholdVault

extension ControlPlane {
    /// How many data keys each KEK wraps, and which KEKs are present.
    public func kekStatus() async throws -> [AdminAPI.KEKStatus] {
        let vault = self.vault
        let counts = try await store.read { tx in try tx.wrappedKeyCounts().map { ($0.kekID, $0.count) } }
        var result = [AdminAPI.KEKStatus(id: vault.kek.id, current: true, wrappedKeys: counts.first { $0.0 == vault.kek.id }?.1 ?? 0, present: true)]
        for kek in vault.previous {
            result.append(.init(id: kek.id, current: false, wrappedKeys: counts.first { $0.0 == kek.id }?.1 ?? 0, present: true))
        }
        for (id, count) in counts where !result.contains(where: { $0.id == id }) {
            result.append(.init(id: id, current: false, wrappedKeys: count, present: false))
        }
        return result
    }

    /// Creates a new KEK and rewraps every data key under it, in batches, while the daemon serves.
    /// When data keys still depend on an older KEK (an interrupted rotation), it resumes rewrapping instead.
    public func rotateKEK(actor: String) async throws -> AdminAPI.KEKRotation {
        try await kekLock.withLock("kek") {
            let current = self.vault.kek.id
            let pending = try await self.store.read { tx in try tx.keysNotWrapped(by: current) }
            var resumed = true
            if pending == 0 {
                resumed = false
                let old = self.vault.kek.id
                let newVault = try state.installNewKEK(replacing: self.vault)
                self.vaults.replace(with: newVault)
                try await self.reportKEKs()
                try await self.recordAttempt(
                    AuditEvent(actor: actor, action: .kekRotate, outcome: .started, details: ["from": old, "to": newVault.kek.id])
                )
            }
            let started = ContinuousClock.now
            let count = try await self.rewrapAll()
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            try await self.recordAttempt(
                AuditEvent(
                    actor: actor, action: .kekRotate,
                    details: [
                        "to": self.vault.kek.id, "rewrapped": String(count), "resumed": String(resumed), "seconds": String(format: "%.3f", seconds),
                    ]
                )
            )
            return AdminAPI.KEKRotation(kekID: self.vault.kek.id, rewrapped: count, resumed: resumed, seconds: seconds)
        }
    }

    /// Refuses to rewrap while another live host of the fleet does not hold `kek`: it could no longer open the keys.
    private func requireFleetHolds(kek: String) async throws {
        let me = sandboxes.configuration.hostID
        let hosts = try await store.read { tx in try tx.hosts() }
        if let lacking = hosts.first(where: { $0.id != me && !$0.isDown && !$0.keks.isEmpty && !$0.keks.contains(kek) }) {
            throw KeyholdError.conflict(
                "host '\(lacking.id)' does not hold KEK \(kek), so nothing was rewrapped: install that KEK on it (its credential kek, the old one kept as previous) and restart its daemon; the rewrap then resumes (or run `keyhold kek rotate` again)"
            )
        }
    }

    /// Records at once which KEKs this host holds (its heartbeat would only in a few seconds).
    func reportKEKs() async throws {
        guard let me = sandboxes.configuration.hostID else { return }
        let keks = vault.kekIDs
        try await store.write { tx in try tx.setHostKEKs(hostID: me, keks: keks) }
    }

    /// Rewraps, batch by batch, every data key not under the current KEK. Each batch is one transaction, so an
    /// interrupted run leaves every key readable and the next run continues where it stopped.
    public func rewrapAll(batchSize: Int = 2000) async throws -> Int {
        try await requireFleetHolds(kek: vault.kek.id)
        var total = 0
        while true {
            let vault = self.vault
            let done = try await store.write { tx in
                try tx.rewrapBatch(notWrappedBy: vault.kek.id, limit: batchSize) { binding, sealed in try vault.rewrap(sealed, binding: binding) }
            }
            total += done
            if done == 0 { return total }
            FaultInjection.point("kek.rewrap-batch")
        }
    }

    /// Destroys every previous KEK that no data key needs any more.
    public func retireKEKs(actor: String) async throws -> [String] {
        try await kekLock.withLock("kek") {
            let status = try await self.kekStatus()
            let busy = status.filter { !$0.current && $0.wrappedKeys > 0 }
            if let first = busy.first {
                throw KeyholdError.conflict(
                    "KEK \(first.id) still wraps \(first.wrappedKeys) data key(s): run `keyhold kek rotate` to finish rewrapping first"
                )
            }
            // A live host still running on an old KEK would seal new keys that no other host could open.
            let retiring = Set(self.vault.previous.map(\.id))
            let hosts = try await self.store.read { tx in try tx.hosts() }
            if let host = hosts.first(where: { !$0.isDown && $0.keks.first.map(retiring.contains) == true }), let kek = host.keks.first {
                throw KeyholdError.conflict(
                    "host '\(host.id)' still uses KEK \(kek) as its current one: restart it with the new KEK first (nothing was retired)")
            }
            var retired: [String] = []
            for kek in self.vault.previous {
                try await self.recordAttempt(AuditEvent(actor: actor, action: .kekRetire, details: ["kek": kek.id]))
                try state.destroyPreviousKEK(id: kek.id)
                retired.append(kek.id)
            }
            self.vaults.replace(with: Vault(kek: self.vault.kek))
            try await self.reportKEKs()
            try self.store.checkpointWAL()
            return retired
        }
    }
}
