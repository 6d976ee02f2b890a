import CSeccomp
import Glibc

extension SeccompPolicy {
    /// The largest errno the kernel passes back from a seccomp filter.
    static let maxErrno: UInt16 = 4095

    /// Checks every name against libseccomp and every number against its range.
    ///
    /// Syscall names are resolved with `seccomp_syscall_resolve_name` and must exist on the native
    /// architecture; architecture names with `seccomp_arch_resolve_name`.
    /// - Throws: ``ProfileError`` naming the first offending field (`syscalls[2].names[0]`).
    public func validate() throws {
        for (index, architecture) in architectures.enumerated() where Self.libseccompArchitecture(architecture) == nil {
            throw ProfileError(.invalidValue, field: "architectures[\(index)]", "unknown architecture \"\(architecture)\"")
        }
        try Self.checkErrno(defaultErrnoRet, action: defaultAction, field: "defaultErrnoRet")
        for (ruleIndex, rule) in syscalls.enumerated() {
            let field = "syscalls[\(ruleIndex)]"
            if rule.names.isEmpty {
                throw ProfileError(.invalidValue, field: field + ".names", "a rule needs at least one syscall name")
            }
            for (nameIndex, name) in rule.names.enumerated() {
                let number = seccomp_syscall_resolve_name(name)
                if number == __NR_SCMP_ERROR {
                    throw ProfileError(.unknownSyscall, field: "\(field).names[\(nameIndex)]", "unknown syscall \"\(name)\"")
                }
                if number < 0 {
                    throw ProfileError(
                        .unknownSyscall, field: "\(field).names[\(nameIndex)]",
                        "syscall \"\(name)\" does not exist on this architecture")
                }
            }
            try Self.checkErrno(rule.errnoRet, action: rule.action, field: field + ".errnoRet")
            for (argIndex, argument) in rule.args.enumerated() where argument.index > 5 {
                throw ProfileError(.invalidValue, field: "\(field).args[\(argIndex)].index", "argument index must be 0 to 5")
            }
        }
    }

    /// Validates the policy and flattens it into the rules `keyhold-exec` loads.
    ///
    /// Like runc, a rule with several conditions on the same argument becomes one rule per condition
    /// (libseccomp accepts one comparison per argument in a rule), and rules whose action equals the
    /// default action are dropped (libseccomp refuses them).
    /// - Throws: ``ProfileError`` as ``validate()``.
    public func compiled() throws -> SeccompFilter {
        try validate()
        let defaultErrno = defaultAction == .errno ? (defaultErrnoRet ?? UInt16(EPERM)) : 0
        let defaultKey = ActionKey(action: defaultAction, errno: defaultErrno)
        var rules: [SeccompFilter.Rule] = []
        for rule in syscalls {
            let errno = rule.action == .errno ? (rule.errnoRet ?? UInt16(EPERM)) : 0
            if ActionKey(action: rule.action, errno: errno) == defaultKey { continue }
            let indices = rule.args.map(\.index)
            let conditionSets: [[Argument]] =
                Set(indices).count == indices.count ? [rule.args] : rule.args.map { [$0] }
            for name in rule.names {
                for conditions in conditionSets {
                    rules.append(.init(syscall: name, action: rule.action, errno: errno, conditions: conditions))
                }
            }
        }
        let extraArchitectures = architectures.compactMap { Self.libseccompArchitecture($0) }.filter { $0 != "native" }
        var seen = Set<String>()
        return SeccompFilter(
            defaultAction: defaultAction, defaultErrno: defaultErrno,
            architectures: extraArchitectures.filter { seen.insert($0).inserted },
            rules: rules)
    }

    /// `SCMP_ARCH_X86_64` → `x86_64`; `native` and `SCMP_ARCH_NATIVE` → `native`; unknown → nil.
    static func libseccompArchitecture(_ name: String) -> String? {
        if name == "native" || name == "SCMP_ARCH_NATIVE" { return "native" }
        guard name.hasPrefix("SCMP_ARCH_") else { return nil }
        let short = String(name.dropFirst("SCMP_ARCH_".count)).lowercased()
        return seccomp_arch_resolve_name(short) == 0 ? nil : short
    }

    private static func checkErrno(_ errno: UInt16?, action: Action, field: String) throws {
        guard let errno else { return }
        if action != .errno {
            throw ProfileError(.invalidValue, field: field, "only meaningful with SCMP_ACT_ERRNO")
        }
        if errno > maxErrno {
            throw ProfileError(.invalidValue, field: field, "errno must be 0 to \(maxErrno)")
        }
    }
}

/// An action with its errno, with the alias `SCMP_ACT_KILL` folded into `SCMP_ACT_KILL_THREAD`.
private struct ActionKey: Equatable {
    var action: SeccompPolicy.Action
    var errno: UInt16

    init(action: SeccompPolicy.Action, errno: UInt16) {
        self.action = action == .kill ? .killThread : action
        self.errno = errno
    }
}
