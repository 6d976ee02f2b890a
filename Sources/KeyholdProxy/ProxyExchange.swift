import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdVault
import Logging
import NIOCore
import NIOHTTP1

/// One request through the proxy, on its connection's event loop: authenticate, check the model and the caps,
/// reserve, forward with the platform's key, meter from the provider's answer, settle.
///
/// Cached answers (token → caller, the platform key, the tenant's ledger) keep the whole path synchronous; a miss
/// reads the database off the loop and the exchange continues on the loop when the read is done.
final class ProxyExchange {
    let proxy: MeteringProxy
    let head: HTTPRequestHead
    let body: ByteBuffer
    var format: WireFormat
    let path: String
    /// The sandbox whose own listener (or terminated key host) took the request, when it brokers its tenant's keys.
    let brokeredListener: BrokeredListener?
    /// A brokered request's key, opened for this request only: wiped when the exchange ends.
    var brokeredSecret: SecretBytes?
    /// The placeholder the agent sent, put back wherever the provider echoes the key.
    var brokeredPlaceholder: String?
    let eventLoop: any EventLoop
    let started = ContinuousClock.now
    /// The connection the answer goes to (released when the exchange ends).
    var connection: ProxyConnectionHandler?

    var caller: ProxyCaller?
    var ask: Ask?
    var reservation: Reservation?
    /// The reservation's journal id and the shard it went to, once journaled (then the request is recorded
    /// whatever happens).
    var journaled: Journaled?
    var upstream: UpstreamCall?
    /// When the request went to the provider, and when the provider's answer ended (the provider's share of the time).
    var upstreamStarted: ContinuousClock.Instant?
    var upstreamEnded: ContinuousClock.Instant?
    /// Whether the request went out in full (a failure after that may have cost the platform).
    var requestSent = false
    var isSettled = false
    var clientIsGone = false
    /// The agent left while its call was under way: the provider's answer is read on for its usage, for no one.
    var drainingAfterHangUp = false
    var response = UpstreamResponse()

    /// What the provider has answered so far.
    struct UpstreamResponse {
        var status = 0
        var headers = HTTPHeaders()
        /// Non-streamed answers are collected, then metered.
        var collected = ByteBuffer()
        var isStream = false
        var events = SSEEvents()
        /// A metered stream's reader, made at its first bytes.
        var reader: StreamUsageReader?
        /// The usage the provider reported (a stream's, as its reader found it).
        var usage: TokenUsage?
        /// Characters of output a stream's deltas held so far.
        var outputCharacters: Int { reader?.outputCharacters ?? 0 }
    }

    init(
        proxy: MeteringProxy, head: HTTPRequestHead, body: ByteBuffer, connection: ProxyConnectionHandler, eventLoop: any EventLoop,
        brokeredListener: BrokeredListener? = nil
    ) {
        self.proxy = proxy
        self.brokeredListener = brokeredListener
        self.head = head
        self.body = body
        self.connection = connection
        self.eventLoop = eventLoop
        self.path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? head.uri
        self.format = Self.format(path: path, headers: head.headers)
    }

    /// Anthropic's API for `/v1/messages`, or for a models list asked the Anthropic way; OpenAI's otherwise.
    static func format(path: String, headers: HTTPHeaders) -> WireFormat {
        if path.hasPrefix("/v1/messages") { return .anthropic }
        if path.hasPrefix("/v1/models") && (headers.contains(name: "anthropic-version") || headers.contains(name: "x-api-key")) {
            return .anthropic
        }
        return .openAI
    }

    func start() {
        if let brokeredListener { return startBrokered(brokeredListener) }
        let route: ManagedRoute
        switch ManagedRoute.of(method: head.method, path: path) {
        case .success(let found): route = found
        case .failure(.unknownPath):
            return finish(format.error(.notFound, type: format.notFoundError, message: "unknown path \(path): the proxy serves \(Self.routes)"))
        case .failure(.methodNotAllowed(let allowed)):
            var answer = format.error(
                .methodNotAllowed, type: format.invalidRequestError, message: "\(path) takes \(allowed.map(\.rawValue).joined(separator: " or "))")
            answer.headers.add(name: "allow", value: allowed.map(\.rawValue).joined(separator: ", "))
            return finish(answer)
        }
        guard let token = format.token(in: head.headers) else {
            return finish(format.error(.unauthorized, type: format.authenticationError, message: "missing proxy token: send it as your API key"))
        }
        let version = proxy.lookups.currentVersion()
        let tokenHash = TokenStore.hash(token)
        if let version, let cached = proxy.lookups.caller(tokenHash, version: version) {
            return authorized(cached, dataVersion: version, route: route)
        }
        let (store, plans, lookups, bases) = (proxy.store, proxy.plans, proxy.lookups, proxy.configuration.upstreamBaseURLs)
        proxy.callerReads.run(CallerKey(tokenHash: tokenHash, dataVersion: version), on: eventLoop) {
            try await ProxyCaller.resolve(token: token, store: store, plans: plans, cache: lookups, version: version, upstreamBaseURLs: bases)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(.caller(let caller)): self.authorized(caller, dataVersion: version, route: route)
            case .success(.refused(let reason)): self.finish(self.format.error(.unauthorized, type: self.format.authenticationError, message: reason))
            case .failure(let error): self.finish(self.databaseUnavailable(error))
            }
        }
    }

    static let routes =
        "POST /v1/chat/completions, POST /v1/embeddings, POST /v1/messages, POST /v1/messages/count_tokens, POST /v1/responses, "
        + "POST /v1/responses/input_tokens, GET|DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items, "
        + "GET /v1/models"

    private func authorized(_ caller: ProxyCaller, dataVersion: Int?, route: ManagedRoute) {
        guard !clientIsGone else { return }
        // A placeholder is worth something only on its own sandbox's listener: here it is answered as an unknown token.
        guard caller.brokered == nil else {
            return finish(format.error(.unauthorized, type: format.authenticationError, message: ProxyCaller.unknownToken))
        }
        self.caller = caller
        switch route {
        case .models: return finish(proxy.models(for: caller.plan, format: format))
        case .countTokens: return countTokens(caller, dataVersion: dataVersion)
        case .storedResponse(let id): return storedResponse(id, caller: caller, dataVersion: dataVersion)
        case .metered: break
        }
        switch MeteringProxy.read(body, path: path, plan: caller.plan, format: format, headers: head.headers) {
        case .refused(let refusal): return finish(refusal)
        case .ask(let parsed): ask = parsed
        }
        if let previous = ask?.previousResponseID {
            return whenOwned(previous, by: caller, param: "previous_response_id") {
                self.loadLedgerThenReserve(caller, dataVersion: dataVersion)
            }
        }
        loadLedgerThenReserve(caller, dataVersion: dataVersion)
    }

    /// Reserves against the caller's caps, once its usage windows are loaded.
    func loadLedgerThenReserve(_ caller: ProxyCaller, dataVersion: Int?) {
        loadLedger(caller) { self.reserve(dataVersion: dataVersion) }
    }

    /// Loads the caller's usage windows once (one read for every request waiting on them), then runs `then`.
    func loadLedger(_ caller: ProxyCaller, then: @escaping () -> Void) {
        if proxy.ledger.isLoaded(caller.tenantID) { return then() }
        let proxy = self.proxy
        proxy.ledgerLoads.run(caller.tenantID, on: eventLoop) { try await proxy.loadLedger(caller) }.assumeIsolated().whenComplete { result in
            switch result {
            case .success: then()
            case .failure(let error): self.finish(self.databaseUnavailable(error))
            }
        }
    }

    private func reserve(dataVersion: Int?) {
        guard !clientIsGone, let caller, var ask, let caps = caller.caps else { return }
        let input = ask.reservedTokens - ask.reservedOutputTokens
        let capAsk = CapAsk(
            inputTokens: input, outputTokens: ask.reservedOutputTokens, inputPicoUSD: TokenUsage(input: input).cost(ask.price),
            picoUSDPerOutputToken: ask.price.outputUSDPerMillion * 1_000_000)
        switch proxy.ledger.reserve(tenantID: caller.tenantID, caps: caps, ask: capAsk) {
        case .failure(let refusal):
            Telemetry.capRefusal(cap: refusal.cap)
            return finish(
                format.error(.tooManyRequests, type: format.rateLimitError, message: refusal.message, retryAfter: refusal.retryAfterSeconds))
        case .success(let held):
            reservation = held
            if let asked = held.clampedFrom {
                // What remains of the caps covers less than the request's maximum: the provider stops at what it covers.
                // The maximum is per completion: `n` of them share what the caps have left.
                let perCompletion = max(1, held.outputTokens / ask.completions)
                guard let clamped = OutputMaximumRewrite.apply(ask.body, fields: ask.outputFields, value: perCompletion) else {
                    settle(usage: TokenUsage(), status: 400, charged: "none")
                    return finish(format.error(.badRequest, type: format.invalidRequestError, message: "the request body is not a JSON object"))
                }
                ask.body = clamped
                ask.reservedOutputTokens = held.outputTokens
                ask.reservedTokens = held.tokens
                ask.clampedFrom = asked
                self.ask = ask
                proxy.clamps.count(tenantID: caller.tenantID, tenantName: caller.tenantName, asked: asked, clampedTo: held.outputTokens)
            }
        }
        if let brokered = caller.brokered {
            guard let key = openBrokeredKey(brokered) else { return }
            return forward(with: key)
        }
        withPlatformKey(ask.provider, dataVersion: dataVersion) { self.forward(with: $0) }
    }

    /// Runs `body` with the platform's key of `provider` (cached, or read once for every request waiting on it);
    /// answers 503 when there is none or it cannot be read.
    func withPlatformKey(_ provider: Provider, dataVersion: Int?, _ body: @escaping (SecretBytes) -> Void) {
        if let key = proxy.platformKeys.cached(for: provider, dataVersion: dataVersion) { return body(key) }
        let platformKeys = proxy.platformKeys
        proxy.keyReads.run(ProviderKey(provider: provider, dataVersion: dataVersion), on: eventLoop) {
            try await platformKeys.key(for: provider, dataVersion: dataVersion)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let key?): body(key)
            case .success(nil):
                self.settle(usage: TokenUsage(), status: 503, charged: "none")
                self.finish(
                    self.format.error(
                        .serviceUnavailable, type: self.format.upstreamError, message: "the platform has no \(provider) key: an operator must set one"
                    )
                )
            case .failure(let error):
                self.settle(usage: TokenUsage(), status: 503, charged: "none")
                self.finish(self.databaseUnavailable(error))
            }
        }
    }

    /// Journals the reservation and sends the request upstream on this event loop.
    private func forward(with key: SecretBytes) {
        guard let caller, let ask, let reservation else { return }
        guard !clientIsGone else { return settle(usage: TokenUsage(), status: 499, charged: "none") }
        let journaled = Journaled(id: RequestID.next(), shard: proxy.journal.shard(for: eventLoop))
        self.journaled = journaled
        let recorded = journaled.shard.reserve(
            JournalEntry(
                kind: "r", id: journaled.id, tenantID: caller.tenantID, sandboxID: caller.sandboxID, model: ask.model,
                reservedTokens: reservation.tokens, reservedPicoUSD: reservation.picoUSD, time: Timestamp.now(),
                keyProvider: caller.brokered?.provider.rawValue, keyVersion: caller.brokered?.record.version, clampedFrom: ask.clampedFrom
            )
        )
        // Fail closed: a request whose reservation is not on disk could not be metered after a crash.
        guard recorded else {
            proxy.journalRefused("a reservation", errorNumber: errno)
            self.journaled = nil
            settle(usage: TokenUsage(), status: 503, charged: "none")
            return finish(
                format.error(
                    .serviceUnavailable, type: format.upstreamError,
                    message:
                        "the proxy cannot record usage right now (its journal's disk refused a write), so the request was not sent; retry shortly"
                ))
        }
        if let brokered = caller.brokered {
            return sendBrokered(brokered, key: key, body: ask.body)
        }
        guard let origin = proxy.origins[ask.provider] else {
            settle(usage: TokenUsage(), status: 502, charged: "none")
            return finish(format.error(.badGateway, type: format.upstreamError, message: "the proxy has no valid URL for \(ask.provider)"))
        }
        upstreamStarted = .now
        upstream = proxy.upstreams.send(
            to: origin, method: .POST, uri: path, headers: proxy.upstreamHeaders(for: ask.provider, clientHeaders: head.headers, key: key),
            body: ask.body,
            on: eventLoop, receiver: self
        )
    }

    /// The agent hung up. A call already sent is read on to its end without the agent (the provider charges it
    /// anyway): its usage settles it, so a hang-up is charged what the provider reports, neither less (a client
    /// leaving before the usage arrived) nor the whole reservation. The reservation and the upstream timeout still
    /// bound it: a stream past its reservation is cut and charged that. A call not yet sent is charged nothing.
    func clientGone() {
        clientIsGone = true
        connection = nil
        if let usage = response.usage {
            upstream?.cancel()
            wipeBrokeredKey()
            settle(usage: usage, status: 499, charged: "usage")
        } else if upstream != nil && ask != nil {
            drainingAfterHangUp = true
        } else if upstream != nil {
            // A brokered call that is not metered has nothing to settle: it stops with its agent.
            upstream?.cancel()
            wipeBrokeredKey()
        } else {
            wipeBrokeredKey()
            settle(usage: TokenUsage(), status: 499, charged: "none")
        }
    }

    /// Settles the reservation once: the provider's usage when known, else the whole reservation (never zero).
    func settle(usage: TokenUsage?, status: Int, charged: String) {
        guard !isSettled, let reservation, let caller, let ask else { return }
        isSettled = true
        // Read on after the agent left: what it was answered is no one's; its row says it hung up.
        let status = drainingAfterHangUp ? 499 : status
        let now = ContinuousClock.now
        let providerShare = upstreamStarted.map { (upstreamEnded ?? now) - $0 } ?? .zero
        let counted = usage ?? TokenUsage()
        Telemetry.proxyRequest(
            plan: caller.plan.id, provider: ask.provider.rawValue, model: ask.model, status: status,
            added: now - started - providerShare, input: counted.input, output: counted.output,
            cached: counted.cachedInput)
        proxy.settle(
            reservation, caller: caller, ask: ask, usage: usage, status: status, charged: charged, started: started,
            journaled: journaled)
    }

    /// Answers and ends the exchange.
    func finish(_ answer: ProxyAnswer) {
        connection?.answer(answer)
        connection = nil
        wipeBrokeredKey()
    }

    /// Wipes a brokered request's key (the exchange is over, or its answer no longer needs redacting).
    func wipeBrokeredKey() {
        brokeredSecret?.wipe()
        brokeredSecret = nil
    }

    func databaseUnavailable(_ error: any Error) -> ProxyAnswer {
        proxy.logger.error("proxy: database read failed: \(error)")
        return format.error(
            .serviceUnavailable, type: format.upstreamError,
            message: "the proxy could not read its database; retry shortly (the operator sees why in its log)"
        )
    }
}

/// Keys of the lookups run once for all requests waiting on them.
struct CallerKey: Hashable, Sendable {
    var tokenHash: Data
    var dataVersion: Int?
}

struct ProviderKey: Hashable, Sendable {
    var provider: Provider
    var dataVersion: Int?
}
