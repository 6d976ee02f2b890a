/// Name tables for the values unit properties take (capabilities, errnos, address families,
/// namespaces, systemd's syscall groups), as systemd 252 spells them.
enum LinuxNames {
    /// Linux capabilities by bit number (`linux/capability.h`, up to CAP_CHECKPOINT_RESTORE).
    static let capabilities: [String: Int] = [
        "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
        "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
        "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
        "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
        "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
        "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
        "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
        "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36,
        "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
    ]

    /// Errno names accepted by `SystemCallErrorNumber` (x86_64/generic numbering).
    static let errnos: [String: Int32] = [
        "EPERM": 1, "ENOENT": 2, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14,
        "EBUSY": 16, "EEXIST": 17, "EINVAL": 22, "ENOSPC": 28, "EROFS": 30, "ENOSYS": 38, "EOPNOTSUPP": 95,
        "ENOTSUP": 95, "EAFNOSUPPORT": 97,
    ]

    /// Address families `RestrictAddressFamilies` accepts.
    static let addressFamilies: Set<String> = [
        "AF_UNIX", "AF_LOCAL", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET", "AF_ALG", "AF_VSOCK",
        "AF_BLUETOOTH", "AF_CAN", "AF_XDP", "AF_KEY", "AF_TIPC", "AF_RDS", "AF_X25", "AF_AX25", "AF_APPLETALK",
        "AF_IPX", "AF_QIPCRTR", "AF_NFC", "AF_SMC", "AF_MCTP", "AF_BRIDGE",
    ]

    /// Namespace names and their `CLONE_NEW*` flags, as `RestrictNamespaces` takes them.
    static let namespaces: [String: UInt64] = [
        "mnt": 0x0002_0000, "cgroup": 0x0200_0000, "uts": 0x0400_0000, "ipc": 0x0800_0000,
        "user": 0x1000_0000, "pid": 0x2000_0000, "net": 0x4000_0000,
    ]

    /// All namespace flags systemd 252 knows (`NAMESPACE_FLAGS_ALL`).
    static let allNamespaceFlags: UInt64 = namespaces.values.reduce(0, |)

    /// systemd 252's syscall groups (`systemd-analyze syscall-filter`).
    static let syscallGroups: Set<String> = [
        "@default", "@aio", "@basic-io", "@chown", "@clock", "@cpu-emulation", "@debug", "@file-system",
        "@io-event", "@ipc", "@keyring", "@memlock", "@module", "@mount", "@network-io", "@obsolete", "@pkey",
        "@privileged", "@process", "@raw-io", "@reboot", "@resources", "@setuid", "@signal", "@swap", "@sync",
        "@system-service", "@timer", "@known",
    ]
}
