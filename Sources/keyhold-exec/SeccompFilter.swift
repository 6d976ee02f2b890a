import CSeccomp
import Glibc
import KeyholdExecPayload

extension Payload.Filter {
    /// Builds the filter with libseccomp and loads it into the kernel for this process and its children.
    ///
    /// The corresponding C functions are `seccomp_init`, `seccomp_arch_add`, `seccomp_rule_add_array`
    /// and `seccomp_load`. libseccomp sets no_new_privs first (SCMP_FLTATR_CTL_NNP defaults to on).
    /// Exits with ``ExitCode/seccomp`` on any failure.
    func load() {
        guard let context = seccomp_init(defaultAction) else { fail(.seccomp, "seccomp_init failed") }
        defer { seccomp_release(context) }
        for (index, name) in architectures.enumerated() {
            if strcmp(name, "native") == 0 { continue }
            let token = seccomp_arch_resolve_name(name)
            if token == 0 { fail(.seccomp, "seccomp architecture \(index): unknown") }
            let result = seccomp_arch_add(context, token)
            if result < 0 && result != -EEXIST {
                fail(.seccomp, "seccomp architecture \(index): seccomp_arch_add: \(describe(errno: -result))")
            }
        }
        for (index, rule) in rules.enumerated() {
            let number = seccomp_syscall_resolve_name(rule.syscall)
            if number == __NR_SCMP_ERROR { fail(.seccomp, "seccomp rule \(index): unknown syscall") }
            let result = rule.conditions.withUnsafeBufferPointer { conditions in
                seccomp_rule_add_array(context, rule.action, number, UInt32(conditions.count), conditions.baseAddress)
            }
            if result < 0 { fail(.seccomp, "seccomp rule \(index): seccomp_rule_add_array: \(describe(errno: -result))") }
        }
        let result = seccomp_load(context)
        if result < 0 { fail(.seccomp, "seccomp_load: \(describe(errno: -result))") }
    }
}
