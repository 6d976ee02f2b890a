public import KeyholdCore

/// An error found while loading or validating a sandbox profile or a seccomp policy.
///
/// Its description names the file (when known), the field and the problem, for example
/// `sandbox-profiles/x.json: unit.ProtectSytem: unknown property`.
public struct ProfileError: UserFacingError, Sendable, Equatable {
    /// The kind of problem. New codes may be added without breaking the API.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case unreadable = "unreadable file"
            case malformed = "malformed JSON"
            case unknownField = "unknown field"
            case missingField = "missing field"
            case wrongType = "wrong type"
            case invalidValue = "invalid value"
            case unknownProperty = "unknown property"
            case reservedProperty = "reserved property"
            case unknownSyscall = "unknown syscall"
            case unknownCapability = "unknown capability"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The file could not be read.
        public static let unreadable = Code(.unreadable)
        /// The file is not valid JSON.
        public static let malformed = Code(.malformed)
        /// A JSON object has a key the schema does not know.
        public static let unknownField = Code(.unknownField)
        /// A required key is absent.
        public static let missingField = Code(.missingField)
        /// A value has the wrong JSON type.
        public static let wrongType = Code(.wrongType)
        /// A value has the right type but is not acceptable.
        public static let invalidValue = Code(.invalidValue)
        /// A unit property the loader does not support.
        public static let unknownProperty = Code(.unknownProperty)
        /// A unit property only Keyhold itself may set (ExecStart, Environment, ...).
        public static let reservedProperty = Code(.reservedProperty)
        /// A syscall name libseccomp does not know on this architecture.
        public static let unknownSyscall = Code(.unknownSyscall)
        /// A capability name that is not a Linux capability.
        public static let unknownCapability = Code(.unknownCapability)

        public var description: String { base.rawValue }
    }

    /// What went wrong.
    public var code: Code
    /// The file the error was found in, as given to the loader; `nil` when not loaded from a file.
    public var file: String?
    /// The path of the offending field, such as `unit.ProtectSystem` or `seccomp.syscalls[2].names[0]`.
    public var field: String?
    /// A human-readable explanation.
    public var message: String

    public init(_ code: Code, file: String? = nil, field: String? = nil, _ message: String) {
        self.code = code
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        [file, field, message].compactMap { $0 }.joined(separator: ": ")
    }

    /// The same error, located in `file` and with `prefix` in front of its field path.
    func located(file: String?, fieldPrefix prefix: String? = nil) -> ProfileError {
        var copy = self
        if copy.file == nil { copy.file = file }
        if let prefix {
            copy.field = copy.field.map { $0.hasPrefix("[") ? prefix + $0 : prefix + "." + $0 } ?? prefix
        }
        return copy
    }
}
