/// The unit properties a profile may set, and the D-Bus encoding of each.
///
/// Names and signatures follow `systemd-run`'s encoder in systemd 252 (`src/shared/bus-unit-util.c`).
enum UnitPropertyTable {
    /// How a profile's JSON value becomes D-Bus properties.
    enum Kind: Equatable {
        /// JSON boolean → `b`.
        case bool
        /// JSON string, one of the listed values → `s`.
        case choice([String])
        /// JSON string naming a `.slice` unit → `s`.
        case slice
        /// JSON array of `CAP_*` names → `t` bit mask (empty array → 0).
        case capabilities
        /// JSON boolean (`true`: no namespace allowed) or array of allowed namespace names → `t` of allowed flags.
        case namespaces
        /// JSON string (`"AF_UNIX AF_INET"`, `"~AF_PACKET"`) or array of such assignments → `(bas)` each.
        case addressFamilies
        /// JSON string (`"@system-service"`, `"~@mount"`) or array of such assignments → `(bas)` each,
        /// merged by systemd in order, as repeated lines in a unit file are.
        case syscallFilter
        /// JSON array of architecture names (`native`, `x86-64`) → `as`.
        case architectures
        /// JSON array of relative directory names → `as`.
        case directories
        /// JSON string errno name (`"EPERM"`) → `i`.
        case errno
        /// JSON string of octal digits (`"0077"`) → `u`.
        case mode
        /// JSON integer bytes, or string with K/M/G/T suffix, or `"infinity"` → `t`.
        case bytes
        /// JSON integer or `"infinity"` → `t`.
        case count
        /// JSON integer or `"infinity"` → `t` for both the hard limit and the `…Soft` limit.
        case resourceLimit
        /// JSON number of seconds or string (`"30s"`, `"500ms"`, `"2min"`, `"infinity"`) → `t` µs under `busName`.
        case seconds(busName: String)
        /// JSON string percentage (`"50%"`) → `CPUQuotaPerSecUSec` `t`.
        case cpuQuota
        /// JSON array of `any`, `localhost`, `ADDRESS/PREFIX` → `a(iayu)`.
        case ipAddresses
        /// JSON array of `PATH[:OPTIONS]` → `a(ss)`.
        case temporaryFileSystems
        /// JSON array of absolute paths → `as`.
        case absolutePaths
    }

    /// Supported properties in the order they are sent.
    static let entries: [(name: String, kind: Kind)] = [
        ("Type", .choice(["simple", "exec", "forking", "oneshot", "dbus", "notify", "idle"])),
        ("NotifyAccess", .choice(["none", "main", "exec", "all"])),
        ("Slice", .slice),
        ("CollectMode", .choice(["inactive", "inactive-or-failed"])),
        ("DynamicUser", .bool),
        ("StateDirectory", .directories),
        ("UMask", .mode),
        ("PrivateTmp", .bool),
        ("PrivateDevices", .bool),
        ("DevicePolicy", .choice(["auto", "closed", "strict"])),
        ("PrivateNetwork", .bool),
        ("IPAddressAllow", .ipAddresses),
        ("IPAddressDeny", .ipAddresses),
        ("TemporaryFileSystem", .temporaryFileSystems),
        ("InaccessiblePaths", .absolutePaths),
        ("ReadOnlyPaths", .absolutePaths),
        ("PrivateUsers", .bool),
        ("PrivateIPC", .bool),
        ("PrivateMounts", .bool),
        ("ProtectSystem", .choice(["no", "yes", "full", "strict"])),
        ("ProtectHome", .choice(["no", "yes", "read-only", "tmpfs"])),
        ("ProtectProc", .choice(["default", "invisible", "ptraceable", "noaccess"])),
        ("ProcSubset", .choice(["all", "pid"])),
        ("ProtectKernelTunables", .bool),
        ("ProtectKernelModules", .bool),
        ("ProtectKernelLogs", .bool),
        ("ProtectControlGroups", .bool),
        ("ProtectClock", .bool),
        ("ProtectHostname", .bool),
        ("NoNewPrivileges", .bool),
        ("CapabilityBoundingSet", .capabilities),
        ("AmbientCapabilities", .capabilities),
        ("RestrictSUIDSGID", .bool),
        ("RestrictRealtime", .bool),
        ("LockPersonality", .bool),
        ("MemoryDenyWriteExecute", .bool),
        ("RemoveIPC", .bool),
        ("KeyringMode", .choice(["inherit", "private", "shared"])),
        ("RestrictNamespaces", .namespaces),
        ("RestrictAddressFamilies", .addressFamilies),
        ("SystemCallArchitectures", .architectures),
        ("SystemCallFilter", .syscallFilter),
        ("SystemCallErrorNumber", .errno),
        ("LimitCORE", .resourceLimit),
        ("LimitNOFILE", .resourceLimit),
        ("MemoryMax", .bytes),
        ("MemoryHigh", .bytes),
        ("MemorySwapMax", .bytes),
        ("TasksMax", .count),
        ("CPUQuota", .cpuQuota),
        ("OOMPolicy", .choice(["continue", "stop", "kill"])),
        ("TimeoutStartSec", .seconds(busName: "TimeoutStartUSec")),
        ("TimeoutStopSec", .seconds(busName: "TimeoutStopUSec")),
        ("RuntimeMaxSec", .seconds(busName: "RuntimeMaxUSec")),
    ]

    /// Properties only Keyhold sets: a profile naming one is refused, so that no secret or
    /// command line ever comes from a profile.
    static let reserved: Set<String> = [
        "ExecStart", "ExecStartPre", "ExecStartPost", "ExecStop", "ExecStopPost", "ExecReload",
        "StandardInput", "StandardInputFileDescriptor", "StandardInputText", "StandardInputData",
        "StandardOutput", "StandardError", "Environment", "EnvironmentFile", "EnvironmentFiles",
        "PassEnvironment", "UnsetEnvironment", "SetCredential", "SetCredentialEncrypted", "LoadCredential",
        "LoadCredentialEncrypted", "User", "Group", "Description", "WorkingDirectory",
    ]

    /// Systemd's spelling of the architectures `SystemCallArchitectures` accepts.
    static let architectures: Set<String> = [
        "native", "x86", "x86-64", "x32", "arm", "arm64", "mips", "mips64", "mips64-n32", "mips-le",
        "mips64-le", "mips64-le-n32", "ppc", "ppc64", "ppc64-le", "s390", "s390x", "riscv64",
    ]

    static func kind(of name: String) -> Kind? {
        entries.first { $0.name == name }?.kind
    }
}
