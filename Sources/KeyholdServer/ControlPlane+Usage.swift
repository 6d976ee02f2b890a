import Foundation
import GRDB
public import KeyholdCore
import KeyholdStore

extension ControlPlane {
    /// A tenant's usage against every cap of its plan, with an optional breakdown by model or day.
    public func usage(tenant name: String, by group: String?) async throws -> AdminAPI.UsageReport {
        if let group, !["model", "day"].contains(group) { throw KeyholdError.invalidInput("--by must be model or day") }
        let tenant = try await store.database.read { db in try Store.tenant(named: name, in: db) }
        let plan = try plans.plan(tenant.plan)
        let now = Date()
        let day = String(Timestamp.format(now).prefix(10))
        let month = String(Timestamp.format(now).prefix(7))
        let (today, thisMonth, breakdown) = try await store.database.read { db in
            (
                try Store.usageTotals(tenantID: tenant.id, since: day + "T00:00:00.000Z", in: db),
                try Store.usageTotals(tenantID: tenant.id, since: month + "-01T00:00:00.000Z", in: db),
                try group.map { try Store.usageBreakdown(tenantID: tenant.id, by: $0, since: month + "-01T00:00:00.000Z", in: db) } ?? []
            )
        }
        var caps: [AdminAPI.UsageReport.CapUsage] = []
        if let limits = plan.caps {
            func line(_ cap: String, _ used: Double, _ limit: Double) -> AdminAPI.UsageReport.CapUsage {
                .init(cap: cap, used: used, limit: limit, percent: limit > 0 ? (used * 1000 / limit).rounded() / 10 : 0)
            }
            caps = [
                line("tokens_per_day", Double(today.tokens), Double(limits.tokensPerDay)),
                line("tokens_per_month", Double(thisMonth.tokens), Double(limits.tokensPerMonth)),
                line("usd_per_month", Double(thisMonth.picoUSD) / 1e12, limits.usdPerMonth),
            ]
        }
        return AdminAPI.UsageReport(
            tenant: tenant.name, plan: plan.id, requestsThisMonth: thisMonth.requests, caps: caps,
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
