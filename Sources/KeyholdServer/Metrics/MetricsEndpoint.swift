import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import KeyholdProxy
import KeyholdStore
import KeyholdVault
import Logging
import Metrics
import NIOCore
import Prometheus
import ServiceLifecycle
import Synchronization

/// The process's metrics registry: swift-metrics is bootstrapped with it once, at the first use.
enum MetricsRegistry {
    static let shared: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(KeyholdMetricsFactory(registry: registry))
        return registry
    }()
}

/// `GET /metrics` in the Prometheus text format (`keyhold serve --metrics HOST:PORT`). What is counted as it happens
/// (starts, injections, proxy requests...) is read from the registry; what is a state (sandboxes, keys' health, the
/// audit log's length, the KEK rewrap, the journal's lag) is read at each scrape.
final class MetricsEndpoint: Sendable {
    let plane: ControlPlane
    let proxy: MeteringProxy?
    let registry: PrometheusCollectorRegistry
    /// The audit log's length at the last scrape (its counter is raised by the difference).
    private let auditSeen = Atomic<Int64>(0)

    init(plane: ControlPlane, proxy: MeteringProxy?) {
        self.plane = plane
        self.proxy = proxy
        registry = MetricsRegistry.shared
    }

    func application(address: BindAddress, logger: Logger, onRunning: @escaping @Sendable () -> Void) -> some Service {
        let router = Router()
        router.get("/metrics") { [self] _, _ -> Response in
            try await refresh()
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return Application(
            router: router, configuration: .init(address: address, serverName: "keyhold-metrics"), onServerRunning: { _ in onRunning() },
            logger: logger)
    }

    /// Reads the states the scrape reports.
    func refresh() async throws {
        let kek = plane.vault.kekIDs.first ?? ""
        let (gauges, notRewrapped) = try await plane.store.read { [host = plane.sandboxes.configuration.hostID] tx in
            (try tx.gauges(host: host), try tx.keysNotWrapped(by: kek))
        }
        for state in SandboxState.allCases where state != .stopped {
            Telemetry.gauge("keyhold_sandboxes", Double(gauges.sandboxes[state.rawValue] ?? 0), dimensions: [("state", state.rawValue)])
        }
        let waiting = plane.sandboxes.warmPoolCounts
        for plan in plane.sandboxes.plans.plans where plan.sandbox.warmPool != nil {
            Telemetry.gauge("keyhold_warm_pool_units", Double(waiting[plan.id] ?? 0), dimensions: [("plan", plan.id)])
        }
        for health in ["unchecked"] + KeyHealth.allCases.map(\.rawValue) {
            Telemetry.gauge("keyhold_keys", Double(gauges.keys[health] ?? 0), dimensions: [("health", health)])
        }
        let previous = auditSeen.exchange(gauges.auditRecords, ordering: .relaxed)
        Telemetry.counter("keyhold_audit_records_total", raisedBy: Int(gauges.auditRecords - min(previous, gauges.auditRecords)))
        Telemetry.gauge("keyhold_kek_rewrap_remaining", Double(notRewrapped))
        if let proxy { Telemetry.gauge("keyhold_usage_journal_lag_seconds", proxy.journalLagSeconds) }
    }
}
