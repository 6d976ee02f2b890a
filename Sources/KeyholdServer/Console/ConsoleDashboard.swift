import Foundation
import KeyholdCore
import KeyholdOrchestration
public import KeyholdStore

/// Gathers what the console shows a tenant and renders it: keys, the latest rotation, the agent, usage, injections,
/// the alert webhook.
public enum ConsoleDashboard {
    /// How many injections and log lines the page lists.
    static let injectionCount = 20
    static let logLineCount = 20

    /// How many `key.use` and `key.misuse` records the page lists.
    static let keyUseCount = 20

    /// A brokered tenant's secrets (bindings and fingerprints, never values), its keys' recent uses, and the
    /// placeholders caught on their way to the wrong host.
    static func brokeredModel(plane: ControlPlane, tenant name: String, into model: inout [String: Any]) async throws {
        model["brokered"] = true
        let secrets = try await plane.listSecrets(tenant: name)
        model["secrets"] = secrets.map { secret -> [String: Any] in
            [
                "name": secret.name, "host": secret.host, "header": secret.header, "env": secret.env, "version": secret.version,
                "state": secret.state, "fingerprint": secret.fingerprint,
            ]
        }
        model["hasSecrets"] = !secrets.isEmpty
        let uses = try await plane.tenantAuditRecords(tenant: name, action: AuditAction.keyUse.rawValue, since: nil, limit: keyUseCount)
        model["keyUses"] = uses.map { record -> [String: Any] in
            let details = record.event.details
            let destinations = details.keys.filter { $0.hasPrefix("destination.") }.sorted().map {
                "\($0.dropFirst("destination.".count)) (\(details[$0] ?? "0"))"
            }
            return [
                "time": display(details["last_use"] ?? record.time), "key": record.event.provider ?? "-",
                "version": record.event.keyVersion.map(String.init) ?? "-", "count": details["count"] ?? "0",
                "destinations": destinations.joined(separator: ", "),
            ]
        }
        model["hasKeyUses"] = !uses.isEmpty
        let misuses = try await plane.tenantAuditRecords(tenant: name, action: AuditAction.keyMisuse.rawValue, since: nil, limit: keyUseCount)
        model["misuses"] = misuses.map { record -> [String: Any] in
            ["time": display(record.time), "key": record.event.provider ?? "-", "destination": record.event.details["destination"] ?? "-"]
        }
        model["hasMisuses"] = !misuses.isEmpty
    }

    /// Renders the console page of a signed-in session.
    /// - Parameters:
    ///   - notice: a sentence confirming what was just done.
    ///   - error: a sentence saying why the last action was refused.
    public static func render(
        plane: ControlPlane, pages: ConsolePages, session: ConsoleSession, notice: String? = nil, error: String? = nil
    ) async throws -> String {
        let name = session.tenantName
        let tenant = try await plane.showTenant(name)
        let plan = try? plane.plans.plan(tenant.plan)
        let managed = plan?.kind == .managed
        var model = ConsolePages.sessionFields(session)
        model["title"] = "Console"
        model["plan"] = plan?.displayName ?? tenant.plan
        model["state"] = tenant.state
        model["managed"] = managed
        if let notice { model["notice"] = notice }
        // "Your agent is moving to it" no longer holds once the rotation ended: its section says how it ended.
        let rotation = try await plane.latestRotation(tenant: name)
        if notice == ConsoleRoutes.notice(for: "rotating"), rotation?.rotation.state != .running { model["notice"] = nil }
        if let error { model["error"] = error }
        model["keys"] = keyRows(tenant.keys ?? [], csrf: session.csrfToken)
        if let progress = rotation {
            model["rotation"] = rotationModel(progress)
            // While the rotation runs the page reloads itself every second (no script, no fetch: the CSP allows neither).
            model["refresh"] = progress.rotation.state == .running
        }
        let sandboxes = (try? await plane.sandboxes.status(tenant: name)) ?? []
        model["sandboxes"] = sandboxes.map { sandbox -> [String: Any] in
            var row: [String: Any] = [
                "unit": sandbox.unit, "state": sandbox.state, "systemdState": sandbox.systemdState ?? "unknown", "restarts": sandbox.restarts,
            ]
            if let error = sandbox.lastError { row["lastError"] = error }
            return row
        }
        let logs = sandboxes.isEmpty ? [] : ((try? await plane.sandboxes.logs(tenant: name, lines: logLineCount))?.lines ?? [])
        model["logs"] = logs
        model["hasLogs"] = !logs.isEmpty
        if managed { model["usage"] = usageModel(try await plane.usage(tenant: name, by: UsageGrouping.day.rawValue)) }
        let injections = try await plane.tenantAuditRecords(tenant: name, action: AuditAction.keyInject.rawValue, since: nil, limit: injectionCount)
        model["injections"] = injections.reversed().map { record -> [String: Any] in
            [
                "time": display(record.time), "provider": record.event.provider ?? "proxy",
                "version": record.event.keyVersion.map(String.init) ?? "-", "fingerprint": record.event.fingerprint ?? "-",
            ]
        }
        model["hasInjections"] = !injections.isEmpty
        if plan?.isBrokered == true { try await brokeredModel(plane: plane, tenant: name, into: &model) }
        if let webhook = tenant.alertWebhook, let host = URLComponents(string: webhook)?.host { model["webhookHost"] = host }
        return pages.dashboard(model)
    }

    /// Every key version worth showing, newest first: the live ones and the latest failed or revoked one of each provider.
    static func keyRows(_ keys: [AdminAPI.Key], csrf: String) -> [[String: Any]] {
        var shown: [[String: Any]] = []
        var providersWithLive = Set(keys.filter { $0.state == KeyState.active.rawValue }.map(\.provider))
        for key in keys.sorted(by: { ($0.provider, -$0.version) < ($1.provider, -$1.version) }) {
            let live = key.state == KeyState.active.rawValue
            if key.state == KeyState.retired.rawValue { continue }
            if !live && key.state != KeyState.pending.rawValue {
                // Only the newest dead version of a provider without a live one says something the tenant needs.
                guard !providersWithLive.contains(key.provider) else { continue }
                providersWithLive.insert(key.provider)
            }
            var row: [String: Any] = [
                "provider": key.provider, "version": key.version, "state": key.state, "fingerprint": key.fingerprint,
                "health": key.health ?? "never checked", "validatedAt": key.validatedAt.map(display) ?? "never checked",
                "createdAt": display(key.createdAt), "live": live, "csrf": csrf,
            ]
            if let detail = key.healthDetail { row["healthDetail"] = detail }
            shown.append(row)
        }
        return shown
    }

    static let stepLabels: [(RotationStep, String)] = [
        (.prepared, "New key stored"), (.startingNew, "Starting the new agent"), (.newReady, "New agent ready"),
        (.stoppingOld, "Stopping the old agent"), (.finished, "Done"),
    ]

    /// The rotation's steps, each done, current or to come, and a sentence on where it stands.
    static func rotationModel(_ progress: RotationProgress) -> [String: Any] {
        let rotation = progress.rotation
        let current = stepLabels.firstIndex { $0.0 == rotation.step } ?? 0
        var steps: [[String: Any]] = stepLabels.enumerated().map { index, entry in
            let status: String
            switch rotation.state {
            case .done: status = "done"
            case .failed: status = ""
            case .running: status = index < current ? "done" : index == current ? "current" : ""
            }
            return ["step": entry.0.rawValue, "label": entry.1, "status": status]
        }
        let detail: String
        switch rotation.state {
        case .running: detail = "Your current agent keeps running until the new one is ready."
        case .done: detail = "The new key is active and the old one is retired. Finished \(display(progress.updatedAt))."
        case .failed:
            detail = "The new key was not taken into use, so your agent kept the previous one: \(progress.error ?? "the new agent did not start")"
            steps.append(["step": RotationStep.rolledBack.rawValue, "label": "Rolled back", "status": "failed"])
        }
        var model: [String: Any] = [
            "state": rotation.state.rawValue, "provider": rotation.provider, "startedAt": display(progress.startedAt), "steps": steps,
            "detail": detail,
        ]
        if let to = rotation.toVersion { model["toVersion"] = to }
        return model
    }

    static func usageModel(_ report: AdminAPI.UsageReport) -> [String: Any] {
        let labels = [
            CapName.tokensPerDay.rawValue: "Tokens today", CapName.tokensPerMonth.rawValue: "Tokens this month",
            CapName.usdPerMonth.rawValue: "Spend this month (USD)",
        ]
        let caps = report.caps.map { cap -> [String: Any] in
            let money = cap.cap == CapName.usdPerMonth.rawValue
            return [
                "label": labels[cap.cap] ?? cap.cap, "used": number(cap.used, money: money), "limit": number(cap.limit, money: money),
                "percent": cap.percent, "bar": min(100, max(0, cap.percent)),
            ]
        }
        // One bar per day of the month, scaled to the busiest day.
        let now = Date()
        let month = String(Timestamp.format(now).prefix(7))
        let calendar = Calendar(identifier: .gregorian)
        var utc = calendar
        utc.timeZone = TimeZone(identifier: "UTC")!
        let lastDay = utc.range(of: .day, in: .month, for: now)?.count ?? 31
        let byDay = Dictionary(report.breakdown.map { ($0.key, $0.tokens) }, uniquingKeysWith: +)
        let busiest = max(1, byDay.values.max() ?? 1)
        let days = (1...lastDay).map { day -> [String: Any] in
            let key = month + "-" + (day < 10 ? "0\(day)" : "\(day)")
            let tokens = byDay[key] ?? 0
            let height = tokens == 0 ? 0 : max(1, Int((Double(tokens) / Double(busiest) * 95).rounded()))
            return ["day": key, "tokens": tokens, "x": (day - 1) * 10, "y": 100 - height, "height": height]
        }
        return ["requests": report.requestsThisMonth, "caps": caps, "days": days, "lastDay": lastDay]
    }

    static func number(_ value: Double, money: Bool) -> String {
        money ? String(format: "%.2f", value) : String(Int64(value.rounded()))
    }

    /// `2026-11-23T22:17:00.123Z` as `2026-11-23 22:17 UTC`.
    static func display(_ time: String) -> String {
        guard time.count >= 16 else { return time }
        return String(time.prefix(10)) + " " + String(time.dropFirst(11).prefix(5)) + " UTC"
    }
}
