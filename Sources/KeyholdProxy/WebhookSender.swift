public import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// POSTs a JSON event to a tenant's webhook: each attempt bounded, retried with back-off, given up after the last.
/// Callers run it in a task of its own, so a webhook that hangs never holds anything else up.
public struct WebhookSender: Sendable {
    let httpClient: HTTPClient
    let logger: Logger
    /// How long one attempt may take.
    let attemptTimeout: TimeAmount
    /// How many attempts, with the delay doubling from `firstDelay` between them.
    let attempts: Int
    let firstDelay: Duration

    public init(
        httpClient: HTTPClient, logger: Logger, attemptTimeout: TimeAmount = .seconds(10), attempts: Int = 6,
        firstDelay: Duration = .milliseconds(500)
    ) {
        self.httpClient = httpClient
        self.logger = logger
        self.attemptTimeout = attemptTimeout
        self.attempts = attempts
        self.firstDelay = firstDelay
    }

    /// Sends `payload` (sorted keys) until an attempt answers 2xx.
    /// - Returns: whether an attempt succeeded.
    @discardableResult
    public func post(_ payload: [String: Any], to url: String, about subject: String) async -> Bool {
        guard let body = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]) else { return false }
        var delay = firstDelay
        for attempt in 1...max(1, attempts) {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            if let response = try? await httpClient.execute(request, timeout: attemptTimeout) {
                _ = try? await response.body.collect(upTo: 64 * 1024)
                if (200..<300).contains(Int(response.status.code)) { return true }
            }
            guard attempt < attempts else { break }
            logger.warning("webhook \(subject) failed (attempt \(attempt) of \(attempts)); retrying")
            try? await Task.sleep(for: delay)
            delay *= 2
        }
        logger.error("webhook \(subject) failed \(attempts) times; giving up")
        return false
    }
}
