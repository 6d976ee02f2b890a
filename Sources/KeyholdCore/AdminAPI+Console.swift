extension AdminAPI {
    /// `POST /v1/tenants/{tenant}/console-link`: how long the link stays usable (default 15 minutes).
    public struct CreateConsoleLink: Codable, Sendable {
        public var ttlSeconds: Int?
        public init(ttlSeconds: Int? = nil) { self.ttlSeconds = ttlSeconds }
    }

    /// A one-time sign-in link to the tenant console: opening it signs the browser in and spends it.
    public struct ConsoleLink: Codable, Sendable {
        public var tenant: String
        public var url: String
        public var expiresAt: String
        public init(tenant: String, url: String, expiresAt: String) {
            self.tenant = tenant
            self.url = url
            self.expiresAt = expiresAt
        }
    }
}
