import KeyholdCore

/// One metered request, as stored.
public struct UsageRow: Sendable {
    public var requestID: String
    public var tenantID: Int64
    public var sandboxID: Int64?
    public var model: String
    public var inputTokens: Int
    public var outputTokens: Int
    public var cachedTokens: Int
    public var cacheWriteTokens: Int
    public var reasoningTokens: Int
    public var costPicoUSD: Int64
    public var status: Int
    public var charged: UsageCharge
    public var latencyMs: Double
    public var createdAt: String

    public init(
        requestID: String, tenantID: Int64, sandboxID: Int64?, model: String, inputTokens: Int, outputTokens: Int, cachedTokens: Int,
        cacheWriteTokens: Int, reasoningTokens: Int, costPicoUSD: Int64, status: Int, charged: UsageCharge, latencyMs: Double, createdAt: String
    ) {
        self.requestID = requestID
        self.tenantID = tenantID
        self.sandboxID = sandboxID
        self.model = model
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedTokens = cachedTokens
        self.cacheWriteTokens = cacheWriteTokens
        self.reasoningTokens = reasoningTokens
        self.costPicoUSD = costPicoUSD
        self.status = status
        self.charged = charged
        self.latencyMs = latencyMs
        self.createdAt = createdAt
    }

    /// Every token the caps count.
    public var totalTokens: Int { inputTokens + cachedTokens + cacheWriteTokens + outputTokens }
}

/// Totals over a period.
public struct UsageTotals: Sendable, Equatable, Codable {
    public var requests: Int
    public var tokens: Int
    public var picoUSD: Int64
}

extension StoreTransaction {
    /// Inserts metered requests; a request already stored (same id) is skipped, so a replay is harmless.
    public func insertUsage(_ rows: [UsageRow]) throws {
        let insert = """
            INSERT INTO usage_requests (request_id, tenant_id, sandbox_id, model, input_tokens, output_tokens, cached_tokens,
            cache_write_tokens, reasoning_tokens, cost_picousd, status, charged, latency_ms, created_at)
            SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?)
            ON CONFLICT (request_id) DO NOTHING
            """
        for row in rows {
            try execute(
                insert, row.requestID, row.tenantID, row.sandboxID, row.model, row.inputTokens, row.outputTokens, row.cachedTokens,
                row.cacheWriteTokens,
                row.reasoningTokens, row.costPicoUSD, row.status, row.charged.rawValue, row.latencyMs, row.createdAt, row.tenantID)
        }
    }

    /// Every stored request, oldest first (for exports and checks).
    public func usageRequests() throws -> [UsageRow] {
        try rows("SELECT * FROM usage_requests ORDER BY id").map { row in
            UsageRow(
                requestID: row["request_id"], tenantID: row["tenant_id"], sandboxID: row["sandbox_id"], model: row["model"],
                inputTokens: row["input_tokens"], outputTokens: row["output_tokens"], cachedTokens: row["cached_tokens"],
                cacheWriteTokens: row["cache_write_tokens"], reasoningTokens: row["reasoning_tokens"], costPicoUSD: row["cost_picousd"],
                status: row["status"], charged: UsageCharge(rawValue: row["charged"]) ?? .reservation, latencyMs: row["latency_ms"],
                createdAt: row["created_at"])
        }
    }

    /// A tenant's totals since a time (`created_at >= since`).
    public func usageTotals(tenantID: Int64, since: String) throws -> UsageTotals {
        let row = try row(
            """
            SELECT COUNT(*) AS n, CAST(COALESCE(SUM(input_tokens + cached_tokens + cache_write_tokens + output_tokens), 0) AS BIGINT) AS tokens,
            CAST(COALESCE(SUM(cost_picousd), 0) AS BIGINT) AS cost FROM usage_requests WHERE tenant_id = ? AND created_at >= ?
            """,
            tenantID, since
        )!
        return UsageTotals(requests: row["n"], tokens: row["tokens"], picoUSD: row["cost"])
    }

    /// A tenant's usage grouped by model or by day (`yyyy-mm-dd`) since a time.
    public func usageBreakdown(tenantID: Int64, by group: UsageGrouping, since: String) throws -> [(String, UsageTotals)] {
        let key = group == .day ? "substr(created_at, 1, 10)" : "model"
        return try rows(
            """
            SELECT \(key) AS k, COUNT(*) AS n, CAST(SUM(input_tokens + cached_tokens + cache_write_tokens + output_tokens) AS BIGINT) AS tokens,
            CAST(SUM(cost_picousd) AS BIGINT) AS cost FROM usage_requests WHERE tenant_id = ? AND created_at >= ? GROUP BY k ORDER BY k
            """,
            tenantID, since
        ).map { ($0["k"], UsageTotals(requests: $0["n"], tokens: $0["tokens"], picoUSD: $0["cost"])) }
    }

    /// Records that an alert fired; false when it already had in this window.
    public func recordAlert(tenantID: Int64, cap: CapName, window: String, threshold: Int) throws -> Bool {
        try execute(
            "INSERT INTO usage_alerts (tenant_id, cap, \"window\", threshold, fired_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            tenantID, cap.rawValue, window, threshold, Timestamp.now()
        ) > 0
    }
}
