import Glibc

/// What the daemon writes into the pipe that becomes `keyhold-exec`'s standard input:
/// the environment entries carrying the secrets, and the seccomp filter to load.
///
/// Wire format (version 1), a sequence of netstrings `<decimal length>:<bytes>,`:
///
///     "keyhold-exec/1"
///     ( "env" NAME VALUE
///     | "arg" VALUE                                            a pooled launch's agent argv, path first
///     | "seccomp" DEFAULT-ACTION DEFAULT-ERRNO                 at most once, before arch and rule
///     | "arch" LIBSECCOMP-ARCH-NAME
///     | "rule" SYSCALL ACTION ERRNO COUNT (INDEX OP VALUE VALUE-TWO){COUNT} )*
///     "end"
///
/// Actions and operators are the OCI names (`SCMP_ACT_ERRNO`, `SCMP_CMP_MASKED_EQ`), numbers are
/// decimal. Nothing may follow `end`. `keyhold-exec` decodes it without Foundation.
public struct ExecPayload: Sendable, Equatable {
    /// One environment variable for the agent.
    public struct EnvironmentEntry: Sendable, Equatable {
        /// The variable's name (`ANTHROPIC_API_KEY`): a letter or `_`, then letters, digits or `_`.
        public var name: String
        /// The secret value; must not contain NUL.
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The first netstring of every payload.
    public static let magic = "keyhold-exec/1"
    /// The largest payload `keyhold-exec` accepts.
    public static let maximumSize = 1 << 20

    public var environment: [EnvironmentEntry]
    /// The filter to load, or nil for none.
    public var seccomp: SeccompFilter?
    /// The agent's argv (absolute path first) for `keyhold-exec --pooled`, which learns its agent only with its key;
    /// empty when the agent is on keyhold-exec's command line.
    public var arguments: [String]

    public init(environment: [EnvironmentEntry], seccomp: SeccompFilter? = nil, arguments: [String] = []) {
        self.environment = environment
        self.seccomp = seccomp
        self.arguments = arguments
    }

    /// A payload with `policy` validated and compiled.
    /// - Throws: ``ProfileError`` if the policy is invalid.
    public init(environment: [EnvironmentEntry], policy: SeccompPolicy, arguments: [String] = []) throws {
        self.init(environment: environment, seccomp: try policy.compiled(), arguments: arguments)
    }

    /// The payload in its wire format. The buffer holds the secrets: prefer ``withEncoded(_:)``,
    /// which zeroes it afterwards.
    public func encode() -> [UInt8] {
        var size = 0
        forEachToken { token in size += token.encodedSize }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(size)  // one allocation: no stale copies of the secrets left behind by growth
        forEachToken { token in token.append(to: &bytes) }
        return bytes
    }

    /// Calls `body` with the encoded payload, then overwrites the buffer with zeros.
    /// - Parameter body: Writes the bytes somewhere (the pipe); must not keep the pointer.
    public func withEncoded<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        var bytes = encode()
        defer {
            bytes.withUnsafeMutableBytes { buffer in
                if let base = buffer.baseAddress { explicit_bzero(base, buffer.count) }
            }
        }
        return try bytes.withUnsafeBytes { try body($0) }
    }

    /// Checks what `keyhold-exec` would refuse: names that are not valid variable names, values with NUL.
    /// - Returns: A message naming the entry by position (never by value), or nil.
    public func problem() -> String? {
        for (index, entry) in environment.enumerated() {
            if !Self.isValidVariableName(entry.name) { return "environment entry \(index): invalid variable name" }
            if entry.value.utf8.contains(0) { return "environment entry \(index): value contains NUL" }
        }
        for (index, argument) in arguments.enumerated() where argument.utf8.contains(0) { return "argument \(index) contains NUL" }
        if let path = arguments.first, !path.hasPrefix("/") { return "the agent's path (argument 0) must be absolute" }
        return nil
    }

    static func isValidVariableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
        }
    }

    private func forEachToken(_ body: (Token) -> Void) {
        body(.text(Self.magic))
        for entry in environment {
            body(.text("env"))
            body(.text(entry.name))
            body(.text(entry.value))
        }
        for argument in arguments {
            body(.text("arg"))
            body(.text(argument))
        }
        if let seccomp {
            body(.text("seccomp"))
            body(.text(seccomp.defaultAction.rawValue))
            body(.number(UInt64(seccomp.defaultErrno)))
            for architecture in seccomp.architectures {
                body(.text("arch"))
                body(.text(architecture))
            }
            for rule in seccomp.rules {
                body(.text("rule"))
                body(.text(rule.syscall))
                body(.text(rule.action.rawValue))
                body(.number(UInt64(rule.errno)))
                body(.number(UInt64(rule.conditions.count)))
                for condition in rule.conditions {
                    body(.number(UInt64(condition.index)))
                    body(.text(condition.op.rawValue))
                    body(.number(condition.value))
                    body(.number(condition.valueTwo))
                }
            }
        }
        body(.text("end"))
    }
}

/// One netstring of the wire format.
private enum Token {
    case text(String)
    case number(UInt64)

    var encodedSize: Int {
        let length: Int
        switch self {
        case .text(let string): length = string.utf8.count
        case .number(let number): length = String(number).utf8.count
        }
        return String(length).utf8.count + 1 + length + 1
    }

    func append(to bytes: inout [UInt8]) {
        switch self {
        case .text(let string):
            bytes.append(contentsOf: String(string.utf8.count).utf8)
            bytes.append(UInt8(ascii: ":"))
            bytes.append(contentsOf: string.utf8)
        case .number(let number):
            let digits = String(number)
            bytes.append(contentsOf: String(digits.utf8.count).utf8)
            bytes.append(UInt8(ascii: ":"))
            bytes.append(contentsOf: digits.utf8)
        }
        bytes.append(UInt8(ascii: ","))
    }
}
