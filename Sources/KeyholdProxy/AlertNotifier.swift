import Foundation
import KeyholdCore
import KeyholdStore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Fires each threshold of each cap once per window: an audit record, and a webhook POST (retried with
/// back-off) when the plan configures one.
final class AlertNotifier: Sendable {
    let store: Store
    let webhooks: WebhookSender
    let logger: Logger
    /// Alerts already fired in this process (the database is the durable record).
    private let fired = Mutex<Set<String>>([])

    init(store: Store, webhooks: WebhookSender, logger: Logger) {
        self.store = store
        self.webhooks = webhooks
        self.logger = logger
    }

    /// Checks a tenant's settled usage against its plan's thresholds.
    func check(caller: ProxyCaller, window: UsageWindow?) {
        guard let window, let caps = caller.caps else { return }
        let measures: [(cap: CapName, window: String, used: Double, limit: Double)] = [
            (.tokensPerDay, window.day, Double(window.tokensToday), Double(caps.tokensPerDay)),
            (.tokensPerMonth, window.month, Double(window.tokensThisMonth), Double(caps.tokensPerMonth)),
            (.usdPerMonth, window.month, Double(window.picoUSDThisMonth) / 1e12, caps.usdPerMonth),
        ]
        for measure in measures where measure.limit > 0 {
            let percent = measure.used * 100 / measure.limit
            for threshold in caller.plan.alertThresholds where percent >= Double(threshold) {
                let key = "\(caller.tenantID)|\(measure.cap)|\(measure.window)|\(threshold)"
                let isNew = fired.withLock { $0.insert(key).inserted }
                guard isNew else { continue }
                Task {
                    await self.fire(
                        caller: caller, cap: measure.cap, window: measure.window, threshold: threshold, used: measure.used, limit: measure.limit)
                }
            }
        }
    }

    private func fire(caller: ProxyCaller, cap: CapName, window: String, threshold: Int, used: Double, limit: Double) async {
        do {
            let first = try await store.write { tx -> Bool in
                guard try tx.recordAlert(tenantID: caller.tenantID, cap: cap, window: window, threshold: threshold) else { return false }
                try tx.appendAudit(
                    AuditEvent(
                        actor: "keyhold-proxy", action: .usageAlert, tenant: caller.tenantName,
                        details: [
                            "cap": cap.rawValue, "window": window, "threshold": "\(threshold)%", "used": Self.format(used),
                            "limit": Self.format(limit), AuditEvent.tenantIDDetail: String(caller.tenantID),
                        ]
                    )
                )
                return true
            }
            guard first, let webhook = caller.alertWebhook else { return }
            let payload: [String: Any] = [
                "tenant": caller.tenantName, "cap": cap.rawValue, "window": window, "threshold_percent": threshold, "used": used, "limit": limit,
                "time": Timestamp.now(),
            ]
            await webhooks.post(payload, to: webhook, about: "alert for \(caller.tenantName)", tenant: caller.tenantName)
        } catch {
            logger.error("could not record the \(cap) alert of \(caller.tenantName): \(error)")
        }
    }

    private static func format(_ value: Double) -> String {
        value.rounded() == value ? String(Int(value)) : String(format: "%.4f", value)
    }
}
