import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import NIOHTTP1

/// POSTs a JSON event to a tenant's webhook: each attempt checked and bounded as every request to a tenant-chosen URL
/// is (`TenantDestinationClient`: no host network, no redirect), retried with back-off, given up after the last.
/// Callers run it in a task of its own, so a webhook that hangs never holds anything else up.
public struct WebhookSender: Sendable {
    let destinations: TenantDestinationClient
    let logger: Logger
    /// How long one attempt may take.
    let attemptTimeout: Duration
    /// How many attempts, with the delay doubling from `firstDelay` between them.
    let attempts: Int
    let firstDelay: Duration

    public init(
        destinations: TenantDestinationClient, logger: Logger, attemptTimeout: Duration = .seconds(10), attempts: Int = 6,
        firstDelay: Duration = .milliseconds(500)
    ) {
        self.destinations = destinations
        self.logger = logger
        self.attemptTimeout = attemptTimeout
        self.attempts = attempts
        self.firstDelay = firstDelay
    }

    /// Sends `payload` (sorted keys) until an attempt answers 2xx.
    /// - Returns: whether an attempt succeeded.
    @discardableResult
    /// - Parameter tenant: whose webhook it is (named in a refusal).
    public func post(_ payload: [String: Any], to url: String, about subject: String, tenant: String) async -> Bool {
        guard let body = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]) else { return false }
        var delay = firstDelay
        for attempt in 1...max(1, attempts) {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "content-type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            switch await destinations.send(
                request, subject: "the alert webhook", tenant: tenant, remedy: TenantDestinationClient.internalDestinationRemedy,
                timeout: attemptTimeout)
            {
            case .answered(let status) where (200..<300).contains(status): return true
            case .refused(let why):
                // Not a passing failure: the destination stays refused until the admin or the tenant changes something.
                logger.error("webhook \(subject) not sent: \(why)")
                return false
            case .answered, .failed: break
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
