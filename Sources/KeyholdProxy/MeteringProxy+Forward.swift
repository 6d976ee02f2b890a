import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import KeyholdCore
import KeyholdStore
import KeyholdVault
import NIOCore
import NIOHTTP1

extension MeteringProxy {
    /// What a request asks for, read from its body.
    struct Ask {
        var model: String
        var price: ModelPrice
        var stream: Bool
        /// The client asked for OpenAI's final usage chunk itself.
        var clientWantsUsage: Bool
        var reservedTokens: Int
        var reservedOutputTokens: Int
        var body: ByteBuffer
    }

    /// Authenticates, checks the model and the caps, reserves, forwards, meters and settles.
    func forward(_ request: Request, context: BasicRequestContext, format: WireFormat) async throws -> Response {
        let started = ContinuousClock.now
        guard let token = format.token(in: request.headers) else {
            return format.error(.unauthorized, type: format.authenticationError, message: "missing proxy token: send it as your API key")
        }
        let dataVersion = lookups.currentVersion()
        let caller: ProxyCaller
        switch try await ProxyCaller.resolve(token: token, store: store, plans: plans, cache: lookups, version: dataVersion) {
        case .refused(let reason): return format.error(.unauthorized, type: format.authenticationError, message: reason)
        case .caller(let resolved): caller = resolved
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maximumBodyBytes)
        } catch {
            return format.error(
                .contentTooLarge, type: format.invalidRequestError, message: "request body larger than \(configuration.maximumBodyBytes) bytes"
            )
        }
        let ask: Ask
        switch read(body, path: request.uri.path, plan: caller.plan, format: format) {
        case .refused(let refusal): return refusal
        case .ask(let parsed): ask = parsed
        }
        try await loadLedger(caller)
        let caps = caller.plan.caps!
        let reservedPico = TokenUsage(input: ask.reservedTokens - ask.reservedOutputTokens, output: ask.reservedOutputTokens).cost(ask.price)
        let reservation: Reservation
        switch ledger.reserve(tenantID: caller.tenantID, caps: caps, tokens: ask.reservedTokens, picoUSD: reservedPico) {
        case .failure(let refusal):
            return format.error(.tooManyRequests, type: format.rateLimitError, message: refusal.message, retryAfter: refusal.retryAfterSeconds)
        case .success(let held): reservation = held
        }
        let provider: Provider = format == .anthropic ? .anthropic : .openai
        guard let key = try await platformKeys.key(for: provider, dataVersion: dataVersion) else {
            settle(reservation, caller: caller, ask: ask, usage: TokenUsage(), status: 503, charged: "none", started: started, id: nil)
            return format.error(
                .serviceUnavailable, type: format.upstreamError, message: "the platform has no \(provider) key: an operator must set one"
            )
        }
        let id = UUID().uuidString
        journal.reserve(
            JournalEntry(
                kind: "r", id: id, tenantID: caller.tenantID, sandboxID: caller.sandboxID, model: ask.model, reservedTokens: ask.reservedTokens,
                reservedPicoUSD: reservedPico, time: Timestamp.now()
            )
        )
        var upstream = HTTPClientRequest(url: upstreamURL(provider: provider, path: request.uri.path))
        upstream.method = .POST
        upstream.headers.add(name: "content-type", value: "application/json")
        for name in ["anthropic-version", "anthropic-beta", "openai-organization", "openai-project", "user-agent", "accept"] {
            if let value = request.headers[HTTPField.Name(name)!] { upstream.headers.add(name: name, value: value) }
        }
        key.withBytes { bytes in
            let value = String(decoding: bytes, as: UTF8.self)
            if provider == .anthropic {
                upstream.headers.add(name: "x-api-key", value: value)
            } else {
                upstream.headers.add(name: "authorization", value: "Bearer " + value)
            }
        }
        upstream.body = .bytes(ask.body)
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(upstream, timeout: .seconds(configuration.upstreamTimeoutSeconds))
        } catch {
            settle(reservation, caller: caller, ask: ask, usage: TokenUsage(), status: 502, charged: "none", started: started, id: id)
            return format.error(.badGateway, type: format.upstreamError, message: "the provider could not be reached: \(Self.describe(error))")
        }
        let status = Int(response.status.code)
        let isStream = response.headers.first(name: "content-type")?.hasPrefix("text/event-stream") == true
        if isStream && (200..<300).contains(status) {
            return stream(response, format: format, ask: ask, caller: caller, reservation: reservation, id: id, started: started)
        }
        let answer: ByteBuffer
        do {
            answer = try await response.body.collect(upTo: 64 << 20)
        } catch {
            settle(reservation, caller: caller, ask: ask, usage: nil, status: status, charged: "reservation", started: started, id: id)
            return format.error(.badGateway, type: format.upstreamError, message: "the provider's answer was cut: \(Self.describe(error))")
        }
        var usage: TokenUsage? = (200..<300).contains(status) ? nil : TokenUsage()
        if usage == nil, let object = try? JSONSerialization.jsonObject(with: Data(answer.readableBytesView)) as? [String: Any],
            let reported = object["usage"] as? [String: Any]
        {
            if format == .anthropic {
                var merged = TokenUsage()
                merged.mergeAnthropic(reported)
                usage = merged
            } else {
                usage = TokenUsage.openAI(reported)
            }
        }
        settle(
            reservation, caller: caller, ask: ask, usage: usage, status: status, charged: usage == nil ? "reservation" : "usage", started: started,
            id: id)
        var headers = HTTPFields()
        headers[.contentType] = response.headers.first(name: "content-type") ?? "application/json"
        for name in ["request-id", "x-request-id", "openai-processing-ms", "retry-after"] {
            if let value = response.headers.first(name: name) { headers[HTTPField.Name(name)!] = value }
        }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: answer))
    }

    /// Parses the body: model allowed, stream flag, reservation size. A refusal is already in the provider's format.
    /// A parsed request, or the answer that refuses it.
    enum Reading {
        case ask(Ask)
        case refused(Response)
    }

    func read(_ body: ByteBuffer, path: String, plan: Plan, format: WireFormat) -> Reading {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: "the request body is not a JSON object"))
        }
        guard let model = object["model"] as? String else {
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: "the request has no 'model'"))
        }
        let provider: Provider = format == .anthropic ? .anthropic : .openai
        guard let price = plan.models.first(where: { $0.id == model && $0.provider == provider }) else {
            let allowed = plan.models.filter { $0.provider == provider }.map(\.id).joined(separator: ", ")
            return .refused(
                format.error(.forbidden, type: format.permissionError, message: "model '\(model)' is not in plan '\(plan.id)' (allowed: \(allowed))")
            )
        }
        let isEmbedding = path.hasSuffix("/embeddings")
        let requested = (object["max_tokens"] as? Int) ?? (object["max_completion_tokens"] as? Int)
        if let requested, requested <= 0 {
            return .refused(format.error(.badRequest, type: format.invalidRequestError, message: "max_tokens must be positive"))
        }
        let output = isEmbedding ? 0 : (requested ?? plan.caps?.defaultMaxTokens ?? 4096)
        // Input tokens are not known before the provider counts them: reserve one per 3 bytes of body, an upper bound for text.
        let input = max(1, (body.readableBytes + 2) / 3)
        let stream = object["stream"] as? Bool ?? false
        let clientWantsUsage = (object["stream_options"] as? [String: Any])?["include_usage"] as? Bool ?? false
        var forwarded = body
        if stream && format == .openAI && !clientWantsUsage && object["stream_options"] == nil,
            let brace = body.readableBytesView.firstIndex(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }),
            body.readableBytesView[brace] == UInt8(ascii: "{")
        {
            // Ask for the final usage chunk (stripped again before the client sees it): streamed calls are metered exactly.
            // The key is inserted after the opening brace, leaving the client's bytes as they were (no re-serialisation).
            let split = brace - body.readableBytesView.startIndex + 1
            var spliced = ByteBuffer()
            spliced.reserveCapacity(body.readableBytes + 40)
            spliced.writeBytes(body.readableBytesView.prefix(split))
            spliced.writeString(#""stream_options":{"include_usage":true},"#)
            spliced.writeBytes(body.readableBytesView.dropFirst(split))
            forwarded = spliced
        } else if stream && format == .openAI && !clientWantsUsage {
            // stream_options without include_usage: rewrite the object.
            var rewritten = object
            var options = object["stream_options"] as? [String: Any] ?? [:]
            options["include_usage"] = true
            rewritten["stream_options"] = options
            if let data = try? JSONSerialization.data(withJSONObject: rewritten) { forwarded = ByteBuffer(bytes: data) }
        }
        return .ask(
            Ask(
                model: model, price: price, stream: stream, clientWantsUsage: clientWantsUsage, reservedTokens: input + output,
                reservedOutputTokens: output, body: forwarded
            )
        )
    }

    func upstreamURL(provider: Provider, path: String) -> String {
        let base = configuration.upstreamBaseURLs[provider] ?? provider.defaultBaseURL ?? ""
        return (base.hasSuffix("/") ? String(base.dropLast()) : base) + path
    }

    /// Settles a reservation: the provider's usage when known, else the whole reservation (never zero).
    func settle(
        _ reservation: Reservation, caller: ProxyCaller, ask: Ask, usage: TokenUsage?, status: Int, charged: String, started: ContinuousClock.Instant,
        id: String?
    ) {
        let tokens = usage?.total ?? reservation.tokens
        let cost = usage?.cost(ask.price) ?? reservation.picoUSD
        ledger.settle(reservation, tokens: tokens, picoUSD: cost)
        guard let id else { return }
        let used = usage ?? TokenUsage(input: reservation.tokens - ask.reservedOutputTokens, output: ask.reservedOutputTokens)
        journal.settle(
            JournalEntry(
                kind: "s", id: id, tenantID: caller.tenantID, sandboxID: caller.sandboxID, model: ask.model, reservedTokens: reservation.tokens,
                reservedPicoUSD: reservation.picoUSD, input: used.input, cachedInput: used.cachedInput, cacheWrite: used.cacheWrite,
                output: used.output,
                reasoning: used.reasoning, picoUSD: cost, status: status, charged: charged,
                latencyMs: Double((ContinuousClock.now - started) / .microseconds(1)) / 1000, time: Timestamp.now()
            )
        )
        alerts.check(caller: caller, window: ledger.snapshot(caller.tenantID))
    }

    /// Loads a tenant's settled usage of the current day and month, once.
    func loadLedger(_ caller: ProxyCaller) async throws {
        guard !ledger.isLoaded(caller.tenantID) else { return }
        let now = Date()
        let day = CapLedger.day(now)
        let month = CapLedger.month(now)
        let (today, thisMonth) = try await store.database.read { db in
            (
                try Store.usageTotals(tenantID: caller.tenantID, since: day + "T00:00:00.000Z", in: db),
                try Store.usageTotals(tenantID: caller.tenantID, since: month + "-01T00:00:00.000Z", in: db)
            )
        }
        ledger.load(
            caller.tenantID,
            window: UsageWindow(
                day: day, month: month, tokensToday: today.tokens, tokensThisMonth: thisMonth.tokens, picoUSDThisMonth: thisMonth.picoUSD
            )
        )
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 160 ? String(text.prefix(160)) + "…" : text
    }
}
