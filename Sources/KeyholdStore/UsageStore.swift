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
    /// The tenant's key a brokered request was sent with; nil for the platform's key (managed plans).
    public var key: UsageKey?
    /// The output maximum the request asked for, when the caps' remainder lowered it (clamped).
    public var clampedFrom: Int?
    /// The Responses API response the request made, if it made one.
    public var responseID: String?

    public init(
        requestID: String, tenantID: Int64, sandboxID: Int64?, model: String, inputTokens: Int, outputTokens: Int, cachedTokens: Int,
        cacheWriteTokens: Int, reasoningTokens: Int, costPicoUSD: Int64, status: Int, charged: UsageCharge, latencyMs: Double, createdAt: String,
        key: UsageKey? = nil, clampedFrom: Int? = nil, responseID: String? = nil
    ) {
        self.responseID = responseID
        self.key = key
        self.clampedFrom = clampedFrom
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

/// Which of a tenant's keys, by provider and version, served a request.
public struct UsageKey: Sendable, Equatable, Hashable {
    public var provider: String
    public var version: Int

    public init(provider: String, version: Int) {
        self.provider = provider
        self.version = version
    }
}

/// Totals over a period.
public struct UsageTotals: Sendable, Equatable, Codable {
    public var requests: Int
    public var tokens: Int
    public var picoUSD: Int64
    /// Of `requests`, how many the caps clamped (their output maximum lowered to what remained).
    public var clamped = 0
}

extension StoreTransaction {
    /// What a request's settlement replaces in the row its flushed reservation left (charged `in-flight`).
    private static let settledColumns = [
        "sandbox_id", "model", "input_tokens", "output_tokens", "cached_tokens", "cache_write_tokens", "reasoning_tokens", "cost_picousd", "status",
        "charged", "latency_ms", "created_at", "key_provider", "key_version", "clamped_from", "response_id",
    ].map { "\($0) = excluded.\($0)" }.joined(separator: ", ")

    /// Inserts metered requests. A request already stored (same id) replaces its row only if that one was charged
    /// `in-flight` (its settlement arrived, or its reservation was charged after a crash); otherwise it is skipped, so
    /// a replay is harmless, and so is a request of a tenant deleted meanwhile. Rows keep their order (ids follow
    /// it). One statement per 200 rows: a round trip per row would dominate on a database across the network.
    public func insertUsage(_ rows: [UsageRow]) throws {
        let columns =
            "request_id, tenant_id, sandbox_id, model, input_tokens, output_tokens, cached_tokens, cache_write_tokens, "
            + "reasoning_tokens, cost_picousd, status, charged, latency_ms, created_at, key_provider, key_version, clamped_from, response_id"
        let placeholders =
            "(CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), "
            + "CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS DOUBLE PRECISION), "
            + "CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT))"
        for start in stride(from: 0, to: rows.count, by: 200) {
            let chunk = rows[start..<min(start + 200, rows.count)]
            var arguments: [StoreValue] = []
            arguments.reserveCapacity(chunk.count * 19)
            for (position, row) in chunk.enumerated() {
                arguments += [
                    .integer(Int64(position)), .text(row.requestID), .integer(row.tenantID), row.sandboxID.map { .integer($0) } ?? .null,
                    .text(row.model),
                    .integer(Int64(row.inputTokens)), .integer(Int64(row.outputTokens)), .integer(Int64(row.cachedTokens)),
                    .integer(Int64(row.cacheWriteTokens)), .integer(Int64(row.reasoningTokens)), .integer(row.costPicoUSD),
                    .integer(Int64(row.status)), .text(row.charged.rawValue), .real(row.latencyMs), .text(row.createdAt),
                    row.key.map { .text($0.provider) } ?? .null, row.key.map { .integer(Int64($0.version)) } ?? .null,
                    row.clampedFrom.map { .integer(Int64($0)) } ?? .null, row.responseID.map { .text($0) } ?? .null,
                ]
            }
            _ = try connection.execute(
                """
                WITH incoming (position, \(columns)) AS (VALUES \(Array(repeating: placeholders, count: chunk.count).joined(separator: ", ")))
                INSERT INTO usage_requests (\(columns)) SELECT \(columns) FROM incoming
                WHERE EXISTS (SELECT 1 FROM tenants WHERE tenants.id = incoming.tenant_id) ORDER BY position
                ON CONFLICT (request_id) DO UPDATE SET \(Self.settledColumns) WHERE usage_requests.charged = 'in-flight'
                """, arguments)
        }
    }

    /// How many requests are stored.
    public func usageRequestCount() throws -> Int { try value("SELECT COUNT(*) FROM usage_requests") ?? 0 }

    /// Every stored request, oldest first (for exports and checks).
    public func usageRequests() throws -> [UsageRow] {
        try rows("SELECT * FROM usage_requests ORDER BY id").map { row in
            UsageRow(
                requestID: row["request_id"], tenantID: row["tenant_id"], sandboxID: row["sandbox_id"], model: row["model"],
                inputTokens: row["input_tokens"], outputTokens: row["output_tokens"], cachedTokens: row["cached_tokens"],
                cacheWriteTokens: row["cache_write_tokens"], reasoningTokens: row["reasoning_tokens"], costPicoUSD: row["cost_picousd"],
                status: row["status"], charged: UsageCharge(rawValue: row["charged"]) ?? .reservation, latencyMs: row["latency_ms"],
                createdAt: row["created_at"],
                key: (row["key_provider"] as String?).flatMap { provider in
                    (row["key_version"] as Int?).map { UsageKey(provider: provider, version: $0) }
                }, clampedFrom: row["clamped_from"], responseID: row["response_id"])
        }
    }

    /// A tenant's totals since a time (`created_at >= since`).
    public func usageTotals(tenantID: Int64, since: String) throws -> UsageTotals {
        let row = try row(
            """
            SELECT COUNT(*) AS n, CAST(COALESCE(SUM(input_tokens + cached_tokens + cache_write_tokens + output_tokens), 0) AS BIGINT) AS tokens,
            CAST(COALESCE(SUM(cost_picousd), 0) AS BIGINT) AS cost, COUNT(clamped_from) AS clamped FROM usage_requests
            WHERE tenant_id = ? AND created_at >= ?
            """,
            tenantID, since
        )!
        return UsageTotals(requests: row["n"], tokens: row["tokens"], picoUSD: row["cost"], clamped: row["clamped"])
    }

    /// When each of a tenant's requests sent upstream since `since` was stored (refusals excluded), oldest first:
    /// the requests-per-minute window a host loads for a tenant that ran elsewhere.
    public func requestTimes(tenantID: Int64, since: String) throws -> [String] {
        try rows(
            "SELECT created_at FROM usage_requests WHERE tenant_id = ? AND created_at >= ? AND charged != 'none' ORDER BY created_at", tenantID,
            since
        ).map { $0["created_at"] }
    }

    /// A tenant's usage grouped by model, by day (`yyyy-mm-dd`) or by key (`openai v2`; `platform` for the platform's
    /// key) since a time.
    public func usageBreakdown(tenantID: Int64, by group: UsageGrouping, since: String) throws -> [(String, UsageTotals)] {
        let key =
            switch group {
            case .day: "substr(created_at, 1, 10)"
            case .model: "model"
            case .key: "COALESCE(key_provider || ' v' || CAST(key_version AS TEXT), 'platform')"
            }
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
