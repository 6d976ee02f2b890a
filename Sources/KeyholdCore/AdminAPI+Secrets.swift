extension AdminAPI {
    /// `PUT /v1/tenants/{tenant}/secrets/{name}`: a new version of a generic secret, and where it may go.
    public struct SetSecret: Codable, Sendable {
        /// The secret itself (a GitHub or Slack token...). Never echoed back.
        public var value: String
        /// `HOST[:PORT]` the secret is sent to (443 by default).
        public var host: String
        public var header: String?
        public var format: String?
        public var env: String?
        public var `private`: Bool?

        public init(value: String, host: String, header: String?, format: String?, env: String?, private: Bool) {
            self.value = value
            self.host = host
            self.header = header
            self.format = format
            self.env = env
            self.private = `private`
        }
    }

    /// A tenant's generic secret as the API shows it: its binding and its newest version (never the value).
    public struct Secret: Codable, Sendable, Equatable {
        public var name: String
        /// `host:port`.
        public var host: String
        public var header: String
        public var format: String
        public var env: String
        public var `private`: Bool
        /// The newest version, and its state: `active`, `retired` or `revoked`.
        public var version: Int
        public var state: String
        public var fingerprint: String
        public var updatedAt: String

        public init(
            name: String, host: String, header: String, format: String, env: String, private: Bool, version: Int, state: String,
            fingerprint: String, updatedAt: String
        ) {
            self.name = name
            self.host = host
            self.header = header
            self.format = format
            self.env = env
            self.private = `private`
            self.version = version
            self.state = state
            self.fingerprint = fingerprint
            self.updatedAt = updatedAt
        }
    }
}
