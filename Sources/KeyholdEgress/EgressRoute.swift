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
    private let lookupCount = Atomic<Int>(0)
    /// Refusal log lines: at most `logBurst` per second per sandbox; the rest are counted and summarised.
    private let logBudget = Mutex<(second: Int64, used: Int, suppressed: Int)>((0, 0, 0))

    /// The most name resolutions one sandbox may have in flight at once, waiting or running (of which it runs at most
    /// `FairLookupPool.threadsPerSandbox` at a time).
    public static let lookupLimit = 8
    static let logBurst = 10

    /// The most connections one sandbox may have open through the gateway at once.
    public static let connectionLimit = 512

    /// For a brokered sandbox: its secrets and placeholders, and the authority its agent trusts (TLS to a host that
    /// carries a secret is terminated with a certificate from it); nil otherwise.
    public let broker: (any SecretBroker)?
    public let authority: SandboxAuthority?

    public init(tenant: String, unit: String, policy: EgressPolicy, broker: (any SecretBroker)? = nil, authority: SandboxAuthority? = nil) {
        self.tenant = tenant
        self.unit = unit
        self.current = Mutex(policy)
        self.broker = broker
        self.authority = authority
    }

    /// Whether TLS connections to `host:port` go to the sandbox's key broker (a brokered key's destination).
    func isKeyDestination(host: String, port: Int) -> Bool {
        guard authority != nil, let broker else { return false }
        return broker.isKeyDestination(host: host, port: port)
    }

    /// The secret whose TLS connections to `host:port` are terminated, if any.
    func terminatedSecret(host: String, port: Int) -> BrokeredSecret? {
        guard authority != nil else { return nil }
        return broker?.secret(host: host, port: port)
    }

    public var policy: EgressPolicy {
        get { current.withLock { $0 } }
        set { current.withLock { $0 = newValue } }
    }

    /// Connections refused since the sandbox started.
    public var refused: Int { refusedCount.load(ordering: .relaxed) }

    func countRefused() { refusedCount.add(1, ordering: .relaxed) }

    /// Counts a new connection; false (and not counted) when the sandbox is at its limit.
    func open() -> Bool {
        let (_, now) = openCount.add(1, ordering: .relaxed)
        guard now > Self.connectionLimit else { return true }
        openCount.subtract(1, ordering: .relaxed)
        return false
    }

    func close() { openCount.subtract(1, ordering: .relaxed) }

    /// Counts a resolution in flight; false when the sandbox is at its limit.
    func beginLookup() -> Bool {
        let (_, now) = lookupCount.add(1, ordering: .relaxed)
        guard now > Self.lookupLimit else { return true }
        lookupCount.subtract(1, ordering: .relaxed)
        return false
    }

    func endLookup() { lookupCount.subtract(1, ordering: .relaxed) }

    /// Resolutions in flight, waiting or running.
    var lookupsInFlight: Int { lookupCount.load(ordering: .relaxed) }

    /// Whether a refusal may be logged now, and how many were left out since the last one logged.
    func logPermit(atSecond second: Int64) -> (allowed: Bool, suppressed: Int) {
        logBudget.withLock { budget in
            if budget.second != second { budget = (second, 0, budget.suppressed) }
            guard budget.used < Self.logBurst else {
                budget.suppressed += 1
                return (false, 0)
            }
            budget.used += 1
            let suppressed = budget.suppressed
            budget.suppressed = 0
            return (true, suppressed)
        }
    }
}
