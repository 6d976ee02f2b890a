/// An error in Keyhold's domain: bad input, a missing or conflicting object, or an unavailable backend.
///
/// Its message is meant for the person at the keyboard: it says what went wrong and what to do next.
/// It never contains a key.
public struct KeyholdError: UserFacingError, Sendable, Equatable {
    /// The class of the error, which the admin API maps to an HTTP status.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: String { case invalidInput, notFound, conflict, unavailable, forbidden, unauthenticated, failed }
        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The request or a file is malformed (HTTP 400).
        public static let invalidInput = Code(.invalidInput)
        /// The named tenant, plan, key or sandbox does not exist (HTTP 404).
        public static let notFound = Code(.notFound)
        /// The operation conflicts with the current state (HTTP 409).
        public static let conflict = Code(.conflict)
        /// A backend (systemd, the audit log, a provider) cannot be reached (HTTP 503).
        public static let unavailable = Code(.unavailable)
        /// The caller is not allowed to do this (HTTP 403).
        public static let forbidden = Code(.forbidden)
        /// The caller did not say who it is (HTTP 401); the API names it `forbidden`, as it always has.
        public static let unauthenticated = Code(.unauthenticated)
        /// The operation was attempted and failed (HTTP 502 / 500).
        public static let failed = Code(.failed)

        /// The name the admin API sends.
        public var description: String { value == .unauthenticated ? Value.forbidden.rawValue : value.rawValue }

        /// The HTTP status the admin API answers with.
        public var httpStatus: Int {
            switch value {
            case .invalidInput: 400
            case .notFound: 404
            case .conflict: 409
            case .unavailable: 503
            case .forbidden: 403
            case .unauthenticated: 401
            case .failed: 502
            }
        }

        /// Parses the name that `description` prints, as the API sends it.
        public init?(name: String) {
            guard let value = Value(rawValue: name) else { return nil }
            self.value = value
        }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func invalidInput(_ message: String) -> KeyholdError { KeyholdError(.invalidInput, message) }
    public static func notFound(_ message: String) -> KeyholdError { KeyholdError(.notFound, message) }
    public static func conflict(_ message: String) -> KeyholdError { KeyholdError(.conflict, message) }
    public static func unavailable(_ message: String) -> KeyholdError { KeyholdError(.unavailable, message) }
    public static func forbidden(_ message: String) -> KeyholdError { KeyholdError(.forbidden, message) }
    public static func unauthenticated(_ message: String) -> KeyholdError { KeyholdError(.unauthenticated, message) }
    public static func failed(_ message: String) -> KeyholdError { KeyholdError(.failed, message) }

    /// The one answer for a tenant that does not exist, or that the caller may not know exists.
    public static func unknownTenant(_ name: String) -> KeyholdError {
        .notFound("no tenant named '\(name.prefix(40))': see `keyhold tenant list`")
    }
}
