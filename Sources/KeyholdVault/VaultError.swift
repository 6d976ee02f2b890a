public import KeyholdCore

/// Why the vault could not seal or open a key. Messages never contain key material.
public struct VaultError: UserFacingError, Sendable, Equatable {
    public struct Code: Hashable, Sendable {
        private enum Value { case kekMissing, kekInvalid, kekMismatch, decryptionFailed, destroyed }
        private let value: Value
        private init(_ value: Value) { self.value = value }
        /// No KEK file or credential was found.
        public static let kekMissing = Code(.kekMissing)
        /// The KEK file exists but is not a Keyhold KEK (wrong size, unsafe mode).
        public static let kekInvalid = Code(.kekInvalid)
        /// The key was sealed under another KEK than the one loaded.
        public static let kekMismatch = Code(.kekMismatch)
        /// Authentication failed: the row was altered or moved to another tenant, provider or version.
        public static let decryptionFailed = Code(.decryptionFailed)
        /// The key version was revoked; its data key is gone.
        public static let destroyed = Code(.destroyed)
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
