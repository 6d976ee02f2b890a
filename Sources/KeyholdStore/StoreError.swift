public import KeyholdCore

/// Why the state store could not be opened or used.
public struct StoreError: UserFacingError, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
