import Foundation
import Synchronization

/// The units each plan keeps started and waiting for a tenant (`warm_pool:` in its `sandbox:` section).
///
/// A waiting unit runs `keyhold-exec --pooled` with the plan's limits and hardening, in a network namespace of its
/// own, as a dynamic user of its own, without a tenant: no state, no name files' entries, no key. The daemon holds
/// the write end of its stdin pipe. A start takes one out of the pool (`take`): handed to that tenant, it is stopped
/// with the tenant's sandbox and never comes back (only a start refused before anything of its tenant reached the
/// unit gives it back). Units that waited past the plan's
/// `warm_pool_max_wait:` are taken out and stopped by the keeper, which also refills the pool.
final class WarmPool: Sendable {
    /// One waiting unit.
    struct Unit: Sendable {
        var name: String
        var plan: String
        /// The write end of its stdin: the payload goes there when a start takes the unit.
        var pipe: InjectionPipe
        var mainPID: Int32
        var invocationID: String
        /// Its dynamic user's (and group's) number, to which the tenant's state is handed.
        var uid: uid_t
        var startedAt: ContinuousClock.Instant
    }

    private let waiting = Mutex<[String: [Unit]]>([:])
    private let wake: AsyncStream<Void>.Continuation
    /// Yields when a unit was taken (the keeper refills).
    let wakes: AsyncStream<Void>

    init() {
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Takes the plan's longest-waiting unit out of the pool, for one start; nil when none waits.
    func take(plan: String) -> Unit? {
        let unit = waiting.withLock { units -> Unit? in
            guard var queue = units[plan], !queue.isEmpty else { return nil }
            let first = queue.removeFirst()
            units[plan] = queue
            return first
        }
        wake.yield()
        return unit
    }

    /// Adds a unit that just started waiting, or one a start took and gave back untouched (refused before anything of
    /// its tenant reached the unit); the pool stays in order of waiting time.
    func add(_ unit: Unit) {
        waiting.withLock { units in
            var queue = units[unit.plan, default: []]
            queue.insert(unit, at: queue.firstIndex { $0.startedAt > unit.startedAt } ?? queue.endIndex)
            units[unit.plan] = queue
        }
    }

    /// Takes out the units that waited `maxWait[plan]` or longer, and those of plans not in `maxWait` (no pool any more).
    func takeExpired(maxWait: [String: Duration], now: ContinuousClock.Instant = .now) -> [Unit] {
        waiting.withLock { units in
            var expired: [Unit] = []
            for (plan, queue) in units {
                guard let wait = maxWait[plan] else {
                    expired += queue
                    units[plan] = nil
                    continue
                }
                let (old, fresh) = (queue.filter { now - $0.startedAt >= wait }, queue.filter { now - $0.startedAt < wait })
                expired += old
                units[plan] = fresh
            }
            return expired
        }
    }

    /// Takes out the units for which `isGone` holds (systemd says they stopped).
    func takeGone(_ isGone: (Unit) -> Bool) -> [Unit] {
        waiting.withLock { units in
            var gone: [Unit] = []
            for (plan, queue) in units {
                gone += queue.filter(isGone)
                units[plan] = queue.filter { !isGone($0) }
            }
            return gone
        }
    }

    /// Takes out `count` units, newest first across plans (when the host needs the room for tenants' sandboxes).
    func takeNewest(_ count: Int) -> [Unit] {
        waiting.withLock { units in
            var all = units.values.flatMap { $0 }.sorted { $0.startedAt > $1.startedAt }
            all = Array(all.prefix(count))
            let names = Set(all.map(\.name))
            for plan in units.keys { units[plan]?.removeAll { names.contains($0.name) } }
            return all
        }
    }

    /// Takes out every unit (the daemon stops).
    func takeAll() -> [Unit] {
        waiting.withLock { units in
            defer { units = [:] }
            return units.values.flatMap { $0 }
        }
    }

    /// How many units wait, by plan.
    var counts: [String: Int] { waiting.withLock { $0.mapValues(\.count) } }

    /// How many units wait in all.
    var total: Int { waiting.withLock { $0.values.reduce(0) { $0 + $1.count } } }

    /// Names of the waiting units.
    var names: Set<String> { waiting.withLock { Set($0.values.flatMap { $0.map(\.name) }) } }

    /// The unit-name prefix of pooled units: `_` is in no tenant's name, so no tenant's unit can match it.
    static let unitPrefix = "keyhold_warm-"

    /// A new unit's name and dynamic user: `keyhold_warm-INSTALLATION-PLAN-HEX.service`, `kh_warm_HEX` (never a
    /// tenant's `kh-NAME`).
    static func newIdentity(installationTag: String, plan: String) -> (unit: String, user: String) {
        let suffix = String(format: "%08x", UInt32.random(in: 0...UInt32.max))
        return ("\(namePrefix(installationTag: installationTag, plan: plan))\(suffix).service", "kh_warm_\(suffix)")
    }

    /// What the names of an installation's warm units start with: `keyhold_warm-INSTALLATION-`, then `PLAN-` if given.
    static func namePrefix(installationTag: String, plan: String? = nil) -> String {
        "\(unitPrefix)\(installationTag)-\(plan.map { $0 + "-" } ?? "")"
    }
}
