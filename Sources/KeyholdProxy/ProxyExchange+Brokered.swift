import Foundation
import KeyholdCore
import KeyholdStore
import KeyholdVault
import Logging
import NIOCore
import NIOHTTP1

/// Brokered keys, on the listener inside a sandbox: the agent sends its placeholder in the provider's own auth header;
/// the exchange finds the tenant's key it stands for, opens it for this request only, sends the request to the key's
/// provider (any path of its API) with the key in that one header, and puts the placeholder back wherever the answer
/// echoes the key. Calls that spend tokens are metered and held to the tenant's own caps exactly as on the managed path.
extension ProxyExchange {
    /// The calls metered from the provider's usage; any other path of the provider's API passes through (counted).
    static let meteredPaths: Set<String> = ["/v1/chat/completions", "/v1/embeddings", "/v1/messages", "/v1/responses"]

    /// Request headers never forwarded: the connection's own, and every header a key could travel in (the key goes
    /// in its provider's header only, written by the exchange).
    static let droppedRequestHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-authorization", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
        "content-length", "authorization", "x-api-key", "accept-encoding", "expect",
    ]

    /// Response headers never passed back: the connection's own, and the length (the answer is framed again).
    static let droppedResponseHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length",
    ]

    func startBrokered(_ listener: BrokeredListener) {
        guard let (token, header) = WireFormat.presentedKey(in: head.headers) else {
            return finish(
                format.error(
                    .unauthorized, type: format.authenticationError,
                    message: "missing API key: send the key your environment holds (OPENAI_API_KEY or ANTHROPIC_API_KEY)"))
        }
        let version = proxy.lookups.currentVersion()
        let tokenHash = TokenStore.hash(token)
        if let version, let cached = proxy.lookups.caller(tokenHash, version: version), cached.brokered?.isStale != true {
            return brokeredAuthorized(cached, placeholder: token, header: header, listener: listener, dataVersion: version)
        }
        let (store, plans, lookups, bases) = (proxy.store, proxy.plans, proxy.lookups, proxy.configuration.upstreamBaseURLs)
        let staticHosts = proxy.configuration.staticHosts
        proxy.callerReads.run(CallerKey(tokenHash: tokenHash, dataVersion: version), on: eventLoop) {
            try await ProxyCaller.resolve(
                token: token, store: store, plans: plans, cache: lookups, version: version, upstreamBaseURLs: bases, staticHosts: staticHosts)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(.caller(let caller)):
                self.brokeredAuthorized(caller, placeholder: token, header: header, listener: listener, dataVersion: version)
            case .success(.refused):
                // A secret's placeholder of this sandbox is a leak attempt, not a made-up key.
                if let label = listener.misuse?.placeholderLabel(of: token) {
                    return self.refuseAsMisuse(label: label, header: header, listener: listener)
                }
                self.refuseAsInvalid()
            case .failure(let error): self.finish(self.databaseUnavailable(error))
            }
        }
    }

    /// Checks that the placeholder belongs to this sandbox and came in its provider's header, then meters or passes.
    private func brokeredAuthorized(_ caller: ProxyCaller, placeholder: String, header: String, listener: BrokeredListener, dataVersion: Int?) {
        guard !clientIsGone else { return }
        guard let brokered = caller.brokered, caller.sandboxID == listener.sandboxID, brokered.brokering.acceptedHeaders.contains(header) else {
            return refuseAsInvalid()
        }
        // A key's placeholder sent to another provider's host (the agent called api.openai.com with its Anthropic key).
        if let providers = listener.providers, !providers.contains(brokered.provider) {
            return refuseAsMisuse(label: brokered.provider.rawValue, header: header, listener: listener)
        }
        format = brokered.provider == .anthropic ? .anthropic : .openAI
        if let refusal = brokered.upstreamRefusal {
            return finish(format.error(.forbidden, type: format.forbiddenError, message: refusal))
        }
        self.caller = caller
        brokeredPlaceholder = placeholder
        if head.method == .POST && Self.meteredPaths.contains(path) {
            switch MeteringProxy.read(body, path: path, plan: caller.plan, format: format, listedPrices: proxy.plans) {
            case .refused(let refusal): return finish(refusal)
            case .ask(let parsed): ask = parsed
            }
            return loadLedgerThenReserve(caller, dataVersion: dataVersion)
        }
        guard let key = openBrokeredKey(brokered) else { return }
        sendBrokered(brokered, key: key, body: body)
    }

    /// A placeholder of this sandbox presented where it may not be used: refused (nothing opened, nothing sent),
    /// audited as `key.misuse` and posted to the tenant's webhook.
    private func refuseAsMisuse(label: String, header: String, listener: BrokeredListener) {
        listener.misuse?.recordMisuse(label: label, destination: listener.destination, location: "the \(header) header")
        finish(
            format.error(
                .forbidden, type: format.forbiddenError,
                message:
                    "a placeholder of this sandbox's \(SecretBinding.describe(label: label)) may not be sent to \(listener.destination); the request was refused and recorded"
            ))
    }

    /// The same answer for every placeholder that is not this sandbox's: made up, revoked, or another's.
    private func refuseAsInvalid() {
        finish(format.error(.unauthorized, type: format.authenticationError, message: ProxyCaller.invalidPlaceholder))
    }

    /// Opens the tenant's key for this request (wiped when the exchange ends); nil after answering 503.
    func openBrokeredKey(_ brokered: BrokeredKey) -> SecretBytes? {
        do {
            let key = try proxy.vaults.current.open(brokered.record.sealed, binding: brokered.record.binding)
            brokeredSecret = key
            return key
        } catch {
            proxy.logger.error("proxy: the \(brokered.provider) key of tenant \(caller?.tenantName ?? "?") could not be opened: \(error)")
            settle(usage: TokenUsage(), status: 503, charged: "none")
            finish(
                format.error(
                    .serviceUnavailable, type: format.upstreamError,
                    message: "the key could not be opened on this host; retry shortly (the operator sees why in its log)"))
            return nil
        }
    }

    /// Sends the agent's request to the key's provider with the key in the provider's header.
    func sendBrokered(_ brokered: BrokeredKey, key: SecretBytes, body: ByteBuffer) {
        guard let caller else { return }
        var headers = HTTPHeaders()
        for (name, value) in head.headers where !Self.droppedRequestHeaders.contains(name.lowercased()) {
            headers.add(name: name, value: value)
        }
        key.withBytes { bytes in
            headers.add(name: brokered.brokering.header, value: brokered.brokering.valuePrefix + String(decoding: bytes, as: UTF8.self))
        }
        proxy.keyUses.count(caller: caller, key: brokered.record, destination: brokered.origin.hostHeader)
        upstreamStarted = .now
        upstream = proxy.upstreams.send(
            to: brokered.origin, method: head.method, uri: brokered.upstreamURI(head.uri), headers: headers, body: body, on: eventLoop, receiver: self
        )
    }

    /// The answer's headers for the agent: the provider's, each echo of the key replaced by the placeholder.
    func brokeredResponseHeaders(_ upstream: HTTPHeaders) -> HTTPHeaders {
        var headers = HTTPHeaders()
        for (name, value) in upstream where !Self.droppedResponseHeaders.contains(name.lowercased()) {
            headers.add(name: name, value: redactedEcho(value))
        }
        return headers
    }

    /// A header value with the key replaced by the placeholder.
    func redactedEcho(_ text: String) -> String {
        guard let secret = brokeredSecret, let placeholder = brokeredPlaceholder else { return text }
        var buffer = ByteBuffer(string: text)
        guard EchoRedaction.redact(&buffer, key: secret, placeholder: placeholder) else { return text }
        return String(buffer: buffer)
    }

    /// A part of the answer with the key replaced by the placeholder (a no-op on the managed path).
    func redactEcho(_ buffer: inout ByteBuffer) {
        guard let secret = brokeredSecret, let placeholder = brokeredPlaceholder else { return }
        EchoRedaction.redact(&buffer, key: secret, placeholder: placeholder)
    }
}
