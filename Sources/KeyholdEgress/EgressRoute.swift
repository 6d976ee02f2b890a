public import KeyholdCore
import Synchronization

/// What one sandbox's gateway listeners serve: whose connections they are and where they may go. The policy can be
/// replaced while the sandbox runs (`allow-egress`/`deny-egress` apply to its next connection).
public final class EgressRoute: Sendable {
    public let tenant: String
    public let unit: String
    private let current: Mutex<EgressPolicy>
    private let refusedCount = Atomic<Int>(0)
    private let openCount = Atomic<Int>(0)

    /// The most connections one sandbox may have open through the gateway at once.
    public static let connectionLimit = 512
    private let allowedCount = Atomic<Int>(0)

    public init(tenant: String, unit: String, policy: EgressPolicy) {
        self.tenant = tenant
        self.unit = unit
        self.current = Mutex(policy)
    }

    public var policy: EgressPolicy {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    /// Connections refused since the sandbox started.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }
    /// Connections let through since the sandbox started.
    public var allowed: Int { allowedCount.load(ordering: .relaxed) }

    func countRefused() { refusedCount.add(1, ordering: .relaxed) }

    /// Counts a new connection; false (and not counted) when the sandbox is at its limit.
    func open() -> Bool {
        let (now, _) = openCount.add(1, ordering: .relaxed)
        guard now > Self.connectionLimit else { return true }
        openCount.subtract(1, ordering: .relaxed)
        return false
    }

    func close() { openCount.subtract(1, ordering: .relaxed) }
    func countAllowed() { allowedCount.add(1, ordering: .relaxed) }
}
