import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdVault
import Logging
import NIOCore
import NIOHTTP1

extension MeteringProxy {
    /// Settles a reservation: the provider's usage when known, else the whole reservation (never zero).
    /// - Parameter journaled: where the reservation was journaled; nil when the request never reached the journal.
    func settle(
        _ reservation: Reservation, caller: ProxyCaller, ask: Ask, usage: TokenUsage?, status: Int, charged: String, started: ContinuousClock.Instant,
        journaled: Journaled?
    ) {
        let tokens = usage?.total ?? reservation.tokens
        let cost = usage?.cost(ask.price) ?? reservation.picoUSD
        ledger.settle(reservation, tokens: tokens, picoUSD: cost)
        guard let journaled else { return }
        let used = usage ?? TokenUsage(input: reservation.tokens - ask.reservedOutputTokens, output: ask.reservedOutputTokens)
        let recorded = journaled.shard.settle(
            JournalEntry(
                kind: "s", id: journaled.id, tenantID: caller.tenantID, sandboxID: caller.sandboxID, model: ask.model,
                reservedTokens: reservation.tokens, reservedPicoUSD: reservation.picoUSD, input: used.input, cachedInput: used.cachedInput,
                cacheWrite: used.cacheWrite, output: used.output, reasoning: used.reasoning, picoUSD: cost, status: status, charged: charged,
                latencyMs: Double((ContinuousClock.now - started) / .microseconds(1)) / 1000, time: Timestamp.now(),
                keyProvider: caller.brokered?.provider.rawValue, keyVersion: caller.brokered?.record.version, clampedFrom: ask.clampedFrom,
                responseID: ask.responseID
            )
        )
        // Unrecorded, the reservation stands in the journal and is charged whole: never less than was reserved.
        if !recorded { journalRefused("a settlement", errorNumber: errno) }
        alerts.check(caller: caller, window: ledger.snapshot(caller.tenantID))
    }

    /// Counts a write the journal's disk refused, and logs it once per burst.
    func journalRefused(_ what: String, errorNumber: Int32) {
        Telemetry.journalWriteFailure()
        if let line = journalFailures.record(what, errorNumber: errorNumber) { logger.error("\(line)") }
    }

    /// Loads a tenant's settled usage of the current day and month, once.
    func loadLedger(_ caller: ProxyCaller) async throws {
        guard !ledger.isLoaded(caller.tenantID) else { return }
        let now = Date()
        let day = CapLedger.day(now)
        let month = CapLedger.month(now)
        let minuteAgo = Timestamp.format(now.addingTimeInterval(-60))
        let (today, thisMonth, lastMinute) = try await store.read { tx in
            (
                try tx.usageTotals(tenantID: caller.tenantID, since: day + "T00:00:00.000Z"),
                try tx.usageTotals(tenantID: caller.tenantID, since: month + "-01T00:00:00.000Z"),
                try tx.requestTimes(tenantID: caller.tenantID, since: minuteAgo)
            )
        }
        var window = UsageWindow(
            day: day, month: month, tokensToday: today.tokens, tokensThisMonth: thisMonth.tokens, picoUSDThisMonth: thisMonth.picoUSD)
        // The last minute's requests, made here before a restart or on the host the tenant ran on before.
        window.seed(requestTimes: lastMinute.compactMap(Timestamp.parse), now: now)
        ledger.load(caller.tenantID, window: window)
    }

    /// The headers sent to the provider: the client's API headers, and the platform's key instead of the token.
    func upstreamHeaders(for provider: Provider, clientHeaders: HTTPHeaders, key: SecretBytes) -> HTTPHeaders {
        var headers = HTTPHeaders([("content-type", "application/json")])
        for name in Self.forwardedHeaders {
            if let value = clientHeaders.first(name: name) { headers.add(name: name, value: value) }
        }
        key.withBytes { bytes in
            let value = String(decoding: bytes, as: UTF8.self)
            if provider == .anthropic {
                headers.add(name: "x-api-key", value: value)
            } else {
                headers.add(name: "authorization", value: "Bearer " + value)
            }
        }
        return headers
    }

    /// The client's headers that reach the provider with the platform's key (API versions and options, not its auth).
    /// `openai-organization` and `openai-project` are not among them: they would bill the call to another of the
    /// platform's organizations or projects; `anthropic-beta` is refused before (`UnpricedRequest`).
    static let forwardedHeaders = ["anthropic-version", "user-agent", "accept"]

    /// `GET /v1/models`: the plan's models, in the caller's format; no upstream call.
    func models(for plan: Plan, format: WireFormat) -> ProxyAnswer {
        let provider: Provider = format == .anthropic ? .anthropic : .openai
        let models = plan.models.filter { $0.provider == provider }.map(\.id)
        let object: [String: Any] =
            format == .anthropic
            ? [
                "data": models.map { ["type": "model", "id": $0, "display_name": $0, "created_at": "2025-01-01T00:00:00Z"] }, "has_more": false,
                "first_id": models.first ?? NSNull(), "last_id": models.last ?? NSNull(),
            ]
            : ["object": "list", "data": models.map { ["id": $0, "object": "model", "created": 0, "owned_by": "keyhold"] }]
        return .json(.ok, Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()))
    }
}
