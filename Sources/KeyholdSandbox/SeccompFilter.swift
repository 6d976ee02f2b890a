/// A seccomp policy flattened into the calls `keyhold-exec` makes to libseccomp:
/// one rule per syscall name, with defaults filled in and rules equal to the default action dropped.
///
/// Build one from a policy with ``SeccompPolicy/compiled()``.
public struct SeccompFilter: Sendable, Equatable {
    /// One `seccomp_rule_add_array` call.
    public struct Rule: Sendable, Equatable {
        /// The syscall's name, resolved by libseccomp at load time.
        public var syscall: String
        public var action: SeccompPolicy.Action
        /// The errno for ``SeccompPolicy/Action/errno``, else 0.
        public var errno: UInt16
        /// Conditions that must all hold; at most one per argument index.
        public var conditions: [SeccompPolicy.Argument]

        public init(syscall: String, action: SeccompPolicy.Action, errno: UInt16 = 0, conditions: [SeccompPolicy.Argument] = []) {
            self.syscall = syscall
            self.action = action
            self.errno = errno
            self.conditions = conditions
        }
    }

    public var defaultAction: SeccompPolicy.Action
    /// The errno for a default action of ``SeccompPolicy/Action/errno``, else 0.
    public var defaultErrno: UInt16
    /// Extra architectures by libseccomp name (`x86_64`, `aarch64`); the native one is always included.
    public var architectures: [String]
    public var rules: [Rule]

    public init(defaultAction: SeccompPolicy.Action, defaultErrno: UInt16 = 0, architectures: [String] = [], rules: [Rule] = []) {
        self.defaultAction = defaultAction
        self.defaultErrno = defaultErrno
        self.architectures = architectures
        self.rules = rules
    }
}
