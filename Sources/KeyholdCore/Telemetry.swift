import Metrics

/// Keyhold's metrics, recorded through swift-metrics (a no-op until `keyhold serve --metrics` bootstraps an exporter)
/// and described here once: each family's help text and, for histograms, its buckets in seconds.
///
/// No label is unbounded: plans, providers and models come from the plan files, statuses and outcomes from short
/// fixed lists; never a tenant's name.
public enum Telemetry {
    /// One metric family as the exporter describes it.
    public struct Family: Sendable {
        public var help: String
        /// Histogram buckets (seconds), for timers.
        public var buckets: [Double]?
    }

    public static let families: [String: Family] = [
        "keyhold_sandbox_start_seconds": .init(
            help: "Time from a start's request to its agent running with its key, by plan and outcome (ok, failed).",
            buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
        "keyhold_sandboxes": .init(help: "Sandboxes this host runs, by state (as recorded: starting, running, stopping, failed)."),
        "keyhold_key_injections_total": .init(help: "Keys (or managed proxy tokens) injected into agents, by plan kind (byok, managed)."),
        "keyhold_rotations_total": .init(help: "Key rotations finished, by outcome (done, failed)."),
        "keyhold_reconciler_restarts_total": .init(help: "Crashed agents restarted by the reconciler."),
        "keyhold_reconciler_passes_total": .init(help: "Passes of the reconciler (on a unit's change of state, and every interval)."),
        "keyhold_systemd_status_reads_total": .init(
            help: "Unit statuses read over D-Bus (a unit's changes come as signals: a read is for a unit not seen since they began)."),
        "keyhold_proxy_requests_total": .init(help: "Metered requests through the proxy, by plan, provider, model and HTTP status."),
        "keyhold_proxy_added_seconds": .init(
            help: "Time the proxy adds to a metered request (its whole time minus the provider's), by plan, provider, model and status.",
            buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5]),
        "keyhold_proxy_tokens_total": .init(help: "Tokens metered by the proxy, by plan, provider, model and kind (input, output, cached)."),
        "keyhold_cap_refusals_total": .init(help: "Proxy requests refused by a plan cap, by cap."),
        "keyhold_usage_journal_write_failures_total": .init(help: "Usage journal writes the disk refused (each failed its request closed)."),
        "keyhold_usage_journal_lag_seconds": .init(help: "Seconds since the usage journal was last flushed into the database."),
        "keyhold_audit_records_total": .init(help: "Audit records in the log."),
        "keyhold_kek_rewrap_remaining": .init(help: "Data keys still wrapped by a previous KEK (0 once a rotation's rewrap is done)."),
        "keyhold_key_checks_total": .init(help: "Key checks with providers (scheduled and on demand), by provider and resulting health."),
        "keyhold_warm_pool_units": .init(help: "Units waiting in a plan's warm pool, by plan."),
        "keyhold_warm_pool_takes_total": .init(help: "Starts of plans with a warm pool, by plan and whether a waiting unit was there (hit, miss)."),
        "keyhold_warm_pool_expired_total": .init(help: "Warm units stopped after waiting longer than their plan's warm_pool_max_wait."),
        "keyhold_keys": .init(help: "Active keys, by health as last checked (unchecked until the first check)."),
    ]

    /// A start finished (or failed) after `duration`.
    public static func sandboxStart(plan: String, outcome: String, duration: Duration) {
        Timer(label: "keyhold_sandbox_start_seconds", dimensions: [("plan", plan), ("outcome", outcome)]).recordNanoseconds(nanoseconds(duration))
    }

    public static func keyInjected(kind: String) {
        Counter(label: "keyhold_key_injections_total", dimensions: [("kind", kind)]).increment()
    }

    public static func rotationFinished(outcome: String) {
        Counter(label: "keyhold_rotations_total", dimensions: [("outcome", outcome)]).increment()
    }

    public static func reconcilerRestart() { Counter(label: "keyhold_reconciler_restarts_total").increment() }

    public static func reconcilerPass() { Counter(label: "keyhold_reconciler_passes_total").increment() }

    public static func unitStatusRead() { Counter(label: "keyhold_systemd_status_reads_total").increment() }

    /// A metered request settled.
    public static func proxyRequest(
        plan: String, provider: String, model: String, status: Int, added: Duration, input: Int, output: Int, cached: Int
    ) {
        let dimensions = [("plan", plan), ("provider", provider), ("model", model), ("status", String(status))]
        Counter(label: "keyhold_proxy_requests_total", dimensions: dimensions).increment()
        Timer(label: "keyhold_proxy_added_seconds", dimensions: dimensions).recordNanoseconds(max(0, nanoseconds(added)))
        for (kind, count) in [("input", input), ("output", output), ("cached", cached)] where count > 0 {
            Counter(label: "keyhold_proxy_tokens_total", dimensions: [("plan", plan), ("provider", provider), ("model", model), ("kind", kind)])
                .increment(by: count)
        }
    }

    public static func warmPoolTake(plan: String, hit: Bool) {
        Counter(label: "keyhold_warm_pool_takes_total", dimensions: [("plan", plan), ("outcome", hit ? "hit" : "miss")]).increment()
    }

    public static func warmPoolExpired(count: Int) { Counter(label: "keyhold_warm_pool_expired_total").increment(by: count) }

    public static func capRefusal(cap: CapName) { Counter(label: "keyhold_cap_refusals_total", dimensions: [("cap", cap.rawValue)]).increment() }

    public static func journalWriteFailure() { Counter(label: "keyhold_usage_journal_write_failures_total").increment() }

    public static func keyCheck(provider: String, health: String) {
        Counter(label: "keyhold_key_checks_total", dimensions: [("provider", provider), ("health", health)]).increment()
    }

    /// Sets a gauge (a value read at scrape time).
    public static func gauge(_ label: String, _ value: Double, dimensions: [(String, String)] = []) {
        Gauge(label: label, dimensions: dimensions).record(value)
    }

    /// Raises a counter kept from a value read at scrape time (the audit log's length) by what it grew since.
    public static func counter(_ label: String, raisedBy amount: Int) {
        if amount > 0 { Counter(label: label).increment(by: amount) }
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
