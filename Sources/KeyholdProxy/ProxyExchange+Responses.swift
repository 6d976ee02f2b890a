import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdVault
import NIOCore
import NIOHTTP1

/// What the managed proxy serves, by method and path.
enum ManagedRoute: Equatable {
    /// `GET /v1/models`: the plan's models.
    case models
    /// A call that spends tokens: chat completions, embeddings, messages, responses.
    case metered
    /// `POST /v1/responses/input_tokens` and `POST /v1/messages/count_tokens`: free, but authenticated and counted
    /// against the requests-per-minute cap.
    case countTokens
    /// A stored response of the caller's tenant: `GET|DELETE /v1/responses/{id}`, `POST /v1/responses/{id}/cancel`,
    /// `GET /v1/responses/{id}/input_items`.
    case storedResponse(id: String)

    enum Refusal: Error {
        case unknownPath
        case methodNotAllowed([HTTPMethod])
    }

    static let meteredPaths: Set<String> = ["/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/responses"]
    static let countPaths: Set<String> = ["/v1/responses/input_tokens", "/v1/messages/count_tokens"]

    static func of(method: HTTPMethod, path: String) -> Result<ManagedRoute, Refusal> {
        func only(_ allowed: [HTTPMethod], _ route: ManagedRoute) -> Result<ManagedRoute, Refusal> {
            allowed.contains(method) ? .success(route) : .failure(.methodNotAllowed(allowed))
        }
        if path == "/v1/models" { return only([.GET], .models) }
        if meteredPaths.contains(path) { return only([.POST], .metered) }
        if countPaths.contains(path) { return only([.POST], .countTokens) }
        let prefix = "/v1/responses/"
        guard path.hasPrefix(prefix) else { return .failure(.unknownPath) }
        let rest = path.dropFirst(prefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard let id = rest.first.map(String.init), ResponseID.isValid(id) else { return .failure(.unknownPath) }
        switch rest.count {
        case 1: return only([.GET, .DELETE], .storedResponse(id: id))
        case 2 where rest[1] == "cancel": return only([.POST], .storedResponse(id: id))
        case 2 where rest[1] == "input_items": return only([.GET], .storedResponse(id: id))
        default: return .failure(.unknownPath)
        }
    }
}

/// The ids the Responses API gives (`resp_` and letters, digits, `_` or `-`).
enum ResponseID {
    static func isValid(_ id: String) -> Bool {
        id.count <= 200 && id.hasPrefix("resp_")
            && id.utf8.allSatisfy {
                $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0)
                    || (0x61...0x7A).contains($0)
            }
    }
}

extension ProxyExchange {
    /// Runs `then` when response `id` was made by the caller's tenant; otherwise answers exactly as OpenAI answers an
    /// unknown id (404 for a stored response, 400 for `previous_response_id`): another tenant's response is not told
    /// apart from one that never existed.
    func whenOwned(_ id: String, by caller: ProxyCaller, param: String?, then: @escaping () -> Void) {
        let notFound = {
            self.finish(
                .json(
                    param == nil ? .notFound : .badRequest,
                    Self.openAINotFound(
                        message: param == nil ? "Response with id '\(id)' not found." : "Previous response with id '\(id)' not found.",
                        param: param)))
        }
        guard ResponseID.isValid(id) else { return notFound() }
        if let owner = proxy.responseOwners.owner(of: id) { return owner == caller.tenantID ? then() : notFound() }
        let store = proxy.store
        let read = eventLoop.makeFutureWithTask { try await store.read { tx in try tx.responseOwner(responseID: id) } }
        read.assumeIsolated().whenComplete { result in
            guard !self.clientIsGone else { return }
            switch result {
            case .success(let owner?) where owner == caller.tenantID:
                self.proxy.responseOwners.remember(id, tenantID: owner)
                then()
            case .success: notFound()
            case .failure(let error): self.finish(self.databaseUnavailable(error))
            }
        }
    }

    /// OpenAI's 404 body for a response id it does not know.
    static func openAINotFound(message: String, param: String?) -> [UInt8] {
        let object: [String: Any] = [
            "error": [
                "message": message, "type": "invalid_request_error", "param": param ?? NSNull() as Any,
                "code": param == nil ? NSNull() as Any : "previous_response_not_found",
            ]
        ]
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    /// Records that the caller's tenant made response `id`: in memory now, and with the request's usage (its journal
    /// line, then its usage row), so a restarted daemon and the fleet's other hosts know whose it is.
    func recordResponse(_ id: String) {
        guard let caller, ResponseID.isValid(id) else { return }
        proxy.responseOwners.remember(id, tenantID: caller.tenantID)
        ask?.responseID = id
    }

    /// A stored response of the caller's tenant: read, deleted, cancelled or its input listed, with the platform's key.
    func storedResponse(_ id: String, caller: ProxyCaller, dataVersion: Int?) {
        whenOwned(id, by: caller, param: nil) {
            self.withPlatformKey(.openai, dataVersion: dataVersion) { key in self.sendUnmetered(to: .openai, key: key) }
        }
    }

    /// `input_tokens` / `count_tokens`: free, but held to the plan's requests per minute.
    func countTokens(_ caller: ProxyCaller, dataVersion: Int?) {
        guard let caps = caller.caps else { return }
        loadLedger(caller) {
            switch self.proxy.ledger.reserve(tenantID: caller.tenantID, caps: caps, tokens: 0, picoUSD: 0) {
            case .failure(let refusal):
                Telemetry.capRefusal(cap: refusal.cap)
                self.finish(
                    self.format.error(
                        .tooManyRequests, type: self.format.rateLimitError, message: refusal.message, retryAfter: refusal.retryAfterSeconds))
            case .success(let held):
                self.proxy.ledger.settle(held, tokens: 0, picoUSD: 0)
                let provider: Provider = self.format == .anthropic ? .anthropic : .openai
                self.withPlatformKey(provider, dataVersion: dataVersion) { key in self.sendUnmetered(to: provider, key: key) }
            }
        }
    }

    /// Sends the agent's request as it came (method, path and query, body) with the platform's key: nothing to meter.
    private func sendUnmetered(to provider: Provider, key: SecretBytes) {
        guard !clientIsGone else { return }
        guard let origin = proxy.origins[provider] else {
            return finish(format.error(.badGateway, type: format.upstreamError, message: "the proxy has no valid URL for \(provider)"))
        }
        let headers = proxy.upstreamHeaders(for: provider, clientHeaders: head.headers, key: key)
        upstreamStarted = .now
        upstream = proxy.upstreams.send(to: origin, method: head.method, uri: head.uri, headers: headers, body: body, on: eventLoop, receiver: self)
    }
}
