import Logging
import Synchronization

/// The connections one sandbox may hold open to its proxy listener at once. Every connection costs the daemon a file
/// descriptor, shared by all tenants: without a bound one agent could take them all. Past the bound a new connection
/// is closed at once (its agent sees a reset), and the sandbox's first refusal is logged.
final class ConnectionBudget: Sendable {
    /// The bound for one sandbox, as the egress gateway's (`EgressRoute.connectionLimit`).
    static let perSandbox = 512

    let limit = ConnectionBudget.perSandbox
    /// Whose listener it bounds, for the log.
    let label: String
    private let open = Atomic<Int>(0)
    private let refusedOnce = Atomic<Bool>(false)

    init(label: String) { self.label = label }

    /// Counts a new connection; false (and not counted) when the sandbox holds `limit` already.
    func take(logger: Logger) -> Bool {
        let (_, now) = open.add(1, ordering: .relaxed)
        guard now > limit else { return true }
        open.subtract(1, ordering: .relaxed)
        if !refusedOnce.exchange(true, ordering: .relaxed) {
            logger.warning("\(label): more than \(limit) connections open to the metering proxy at once; the next are closed until some end")
        }
        return false
    }

    func give() { open.subtract(1, ordering: .relaxed) }
}
