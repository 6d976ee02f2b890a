/// A seccomp policy in the OCI runtime-spec / Docker JSON format.
///
/// Decoding is strict: an unknown key, action, operator or a value of the wrong type is an error.
/// Names (syscalls, architectures) are checked against libseccomp by ``validate()``.
public struct SeccompPolicy: Codable, Sendable, Equatable {
    /// What the filter does with a matching syscall (`SCMP_ACT_*`).
    public enum Action: String, Codable, Sendable, CaseIterable {
        case allow = "SCMP_ACT_ALLOW"
        case errno = "SCMP_ACT_ERRNO"
        case killProcess = "SCMP_ACT_KILL_PROCESS"
        case killThread = "SCMP_ACT_KILL_THREAD"
        /// The historical name of ``killThread``.
        case kill = "SCMP_ACT_KILL"
        case log = "SCMP_ACT_LOG"
        case trap = "SCMP_ACT_TRAP"

        public init(from decoder: any Decoder) throws {
            let raw = try decoder.singleValueContainer().decode(String.self)
            guard let value = Action(rawValue: raw) else {
                throw ProfileError(.invalidValue, field: fieldPath(decoder.codingPath), "unknown action \"\(raw)\"")
            }
            self = value
        }
    }

    /// A comparison operator for a syscall argument (`SCMP_CMP_*`).
    public enum Operator: String, Codable, Sendable, CaseIterable {
        case notEqual = "SCMP_CMP_NE"
        case lessThan = "SCMP_CMP_LT"
        case lessOrEqual = "SCMP_CMP_LE"
        case equal = "SCMP_CMP_EQ"
        case greaterOrEqual = "SCMP_CMP_GE"
        case greaterThan = "SCMP_CMP_GT"
        /// `(arg & value) == valueTwo`.
        case maskedEqual = "SCMP_CMP_MASKED_EQ"

        public init(from decoder: any Decoder) throws {
            let raw = try decoder.singleValueContainer().decode(String.self)
            guard let value = Operator(rawValue: raw) else {
                throw ProfileError(.invalidValue, field: fieldPath(decoder.codingPath), "unknown operator \"\(raw)\"")
            }
            self = value
        }
    }

    /// A condition on one syscall argument.
    public struct Argument: Codable, Sendable, Equatable, Hashable {
        /// The argument's position, 0 to 5.
        public var index: UInt32
        /// The value compared with (the mask for ``Operator/maskedEqual``).
        public var value: UInt64
        /// The second value (the expected masked value for ``Operator/maskedEqual``).
        public var valueTwo: UInt64
        public var op: Operator

        public init(index: UInt32, value: UInt64, valueTwo: UInt64 = 0, op: Operator) {
            self.index = index
            self.value = value
            self.valueTwo = valueTwo
            self.op = op
        }

        private enum CodingKeys: String, CodingKey { case index, value, valueTwo, op }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(["index", "value", "valueTwo", "op"])
            let container = try decoder.container(keyedBy: CodingKeys.self)
            index = try container.decode(UInt32.self, forKey: .index)
            value = try container.decode(UInt64.self, forKey: .value)
            valueTwo = try container.decodeIfPresent(UInt64.self, forKey: .valueTwo) ?? 0
            op = try container.decode(Operator.self, forKey: .op)
        }
    }

    /// One rule: an action for a set of syscalls, optionally only when all `args` conditions hold.
    public struct Syscall: Codable, Sendable, Equatable {
        public var names: [String]
        public var action: Action
        /// The errno returned by ``Action/errno``; EPERM when absent.
        public var errnoRet: UInt16?
        public var args: [Argument]
        /// Free text, ignored.
        public var comment: String?

        public init(names: [String], action: Action, errnoRet: UInt16? = nil, args: [Argument] = [], comment: String? = nil) {
            self.names = names
            self.action = action
            self.errnoRet = errnoRet
            self.args = args
            self.comment = comment
        }

        private enum CodingKeys: String, CodingKey { case names, action, errnoRet, args, comment }

        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(["names", "action", "errnoRet", "args", "comment"])
            let container = try decoder.container(keyedBy: CodingKeys.self)
            names = try container.decode([String].self, forKey: .names)
            action = try container.decode(Action.self, forKey: .action)
            errnoRet = try container.decodeIfPresent(UInt16.self, forKey: .errnoRet)
            args = try container.decodeIfPresent([Argument].self, forKey: .args) ?? []
            comment = try container.decodeIfPresent(String.self, forKey: .comment)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(names, forKey: .names)
            try container.encode(action, forKey: .action)
            try container.encodeIfPresent(errnoRet, forKey: .errnoRet)
            if !args.isEmpty { try container.encode(args, forKey: .args) }
            try container.encodeIfPresent(comment, forKey: .comment)
        }
    }

    /// The action for syscalls no rule matches.
    public var defaultAction: Action
    /// The errno returned when ``defaultAction`` is ``Action/errno``; EPERM when absent.
    public var defaultErrnoRet: UInt16?
    /// Architectures the filter covers, as `SCMP_ARCH_X86_64`-style names or `native`.
    /// The native architecture is always covered.
    public var architectures: [String]
    public var syscalls: [Syscall]

    public init(defaultAction: Action, defaultErrnoRet: UInt16? = nil, architectures: [String] = [], syscalls: [Syscall] = []) {
        self.defaultAction = defaultAction
        self.defaultErrnoRet = defaultErrnoRet
        self.architectures = architectures
        self.syscalls = syscalls
    }

    private enum CodingKeys: String, CodingKey { case defaultAction, defaultErrnoRet, architectures, syscalls }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(["defaultAction", "defaultErrnoRet", "architectures", "syscalls"])
        let container = try decoder.container(keyedBy: CodingKeys.self)
        defaultAction = try container.decode(Action.self, forKey: .defaultAction)
        defaultErrnoRet = try container.decodeIfPresent(UInt16.self, forKey: .defaultErrnoRet)
        architectures = try container.decodeIfPresent([String].self, forKey: .architectures) ?? []
        syscalls = try container.decodeIfPresent([Syscall].self, forKey: .syscalls) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(defaultAction, forKey: .defaultAction)
        try container.encodeIfPresent(defaultErrnoRet, forKey: .defaultErrnoRet)
        if !architectures.isEmpty { try container.encode(architectures, forKey: .architectures) }
        try container.encode(syscalls, forKey: .syscalls)
    }
}
