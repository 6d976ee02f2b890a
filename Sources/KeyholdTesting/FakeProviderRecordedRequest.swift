extension FakeProvider {
    /// One request exactly as it reached the fake provider.
    public struct RecordedRequest: Sendable, Hashable {
        /// One header line, in arrival order, with the name as sent.
        public struct Header: Sendable, Hashable {
            /// Header name as sent on the wire.
            public var name: String
            /// Header value.
            public var value: String
        }

        /// HTTP method, e.g. `POST`.
        public var method: String
        /// Path without the query, e.g. `/v1/chat/completions`.
        public var path: String
        /// Query string without the `?`, if any.
        public var query: String?
        /// All header lines in arrival order.
        public var headers: [Header]
        /// The request body, byte for byte.
        public var body: [UInt8]
        /// The provider the fake classified the request as.
        public var provider: Provider
        /// Whether `TCP_NODELAY` was set on the accepted connection that carried the request
        /// (`nil` when it could not be read).
        public var connectionNoDelay: Bool?
        /// When the request's body had arrived, on the monotonic clock.
        public var receivedAt: ContinuousClock.Instant = .now

        /// The first value of the header `name` (case-insensitive), or `nil`.
        public func header(_ name: String) -> String? {
            let lowered = name.lowercased()
            return headers.first { $0.name.lowercased() == lowered }?.value
        }

        /// The body decoded as UTF-8 (lossy).
        public var bodyString: String {
            String(decoding: body, as: UTF8.self)
        }
    }
}
