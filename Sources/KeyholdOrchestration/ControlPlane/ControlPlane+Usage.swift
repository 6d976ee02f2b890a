import Foundation
public import KeyholdCore
import KeyholdStore

extension ControlPlane {
    /// A tenant's usage against every cap of its plan (or, brokered, the caps it set on its own keys), with an optional
    /// breakdown by model, day or key version.
    public func usage(tenant name: String, by group: String?) async throws -> AdminAPI.UsageReport {
        let grouping = try group.map { name in
            guard let grouping = UsageGrouping(rawValue: name) else {
                throw KeyholdError.invalidInput("--by must be model, day or key (got '\(name)')")
            }
            return grouping
        }
        let tenant = try await store.read { tx in try tx.tenant(named: name) }
        let plan = try plans.effectivePlan(for: tenant)
        let now = Date()
        let day = String(Timestamp.format(now).prefix(10))
        let month = String(Timestamp.format(now).prefix(7))
        let (today, thisMonth, breakdown) = try await store.read { tx in
            (
                try tx.usageTotals(tenantID: tenant.id, since: day + "T00:00:00.000Z"),
                try tx.usageTotals(tenantID: tenant.id, since: month + "-01T00:00:00.000Z"),
                try grouping.map { try tx.usageBreakdown(tenantID: tenant.id, by: $0, since: month + "-01T00:00:00.000Z") } ?? []
            )
        }
        func line(_ cap: CapName, _ used: Double, _ limit: Double) -> AdminAPI.UsageReport.CapUsage {
            .init(cap: cap.rawValue, used: used, limit: limit, percent: limit > 0 ? (used * 1000 / limit).rounded() / 10 : 0)
        }
        var caps: [AdminAPI.UsageReport.CapUsage] = []
        if let limits = plan.caps {
            caps = [
                line(.tokensPerDay, Double(today.tokens), Double(limits.tokensPerDay)),
                line(.tokensPerMonth, Double(thisMonth.tokens), Double(limits.tokensPerMonth)),
                line(.usdPerMonth, Double(thisMonth.picoUSD) / 1e12, limits.usdPerMonth),
            ]
        } else if plan.kind == .byok, let limits = tenant.keyCaps {
            // The limits the tenant set on its own keys' brokered use: only those it set.
            if let limit = limits.tokensPerDay { caps.append(line(.tokensPerDay, Double(today.tokens), Double(limit))) }
            if let limit = limits.tokensPerMonth { caps.append(line(.tokensPerMonth, Double(thisMonth.tokens), Double(limit))) }
            if let limit = limits.usdPerMonth { caps.append(line(.usdPerMonth, Double(thisMonth.picoUSD) / 1e12, limit)) }
        }
        return AdminAPI.UsageReport(
            tenant: tenant.name, plan: plan.id, requestsThisMonth: thisMonth.requests, clampedThisMonth: thisMonth.clamped, caps: caps,
            breakdown: breakdown.map { .init(key: $0.0, requests: $0.1.requests, tokens: $0.1.tokens, usd: Double($0.1.picoUSD) / 1e12) }
        )
    }

    /// Every tenant's usage against its caps.
    public func usageOfAllTenants() async throws -> [AdminAPI.UsageReport] {
        var reports: [AdminAPI.UsageReport] = []
        for tenant in try await listTenants() { reports.append(try await usage(tenant: tenant.name, by: nil)) }
        return reports
    }
}
