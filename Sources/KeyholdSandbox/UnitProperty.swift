/// One property of a transient systemd unit, typed as systemd's D-Bus API expects it.
///
/// The D-Bus signature of each case is the one `systemd-run`'s encoder uses
/// (systemd's `src/shared/bus-unit-util.c`).
public enum UnitProperty: Sendable, Equatable {
    /// Signature `s`.
    case string(String, String)
    /// Signature `b`.
    case bool(String, Bool)
    /// Signature `t`.
    case uint64(String, UInt64)
    /// Signature `u`.
    case uint32(String, UInt32)
    /// Signature `i`.
    case int32(String, Int32)
    /// Signature `as`.
    case strings(String, [String])
    /// Signature `(bas)`: an allow-list (`true`) or a deny-list (`false`) of names,
    /// as `SystemCallFilter` and `RestrictAddressFamilies` take it.
    case boolStrings(String, Bool, [String])
    /// `ExecStart`, signature `a(sasb)`: the path, the full argv (argv[0] included), ignore-failure false.
    case execStart(path: String, argv: [String])
    /// Signature `h`: a file descriptor sent over D-Bus (for `StandardInputFileDescriptor`).
    /// The caller keeps ownership of the descriptor; sd-bus duplicates it while sending.
    case fileDescriptor(String, Int32)
    /// Signature `a(ssbt)`: `BindPaths` / `BindReadOnlyPaths` entries (source, destination, ignore-missing, flags).
    case bindPaths(String, [BindPath])

    /// The property's name as systemd knows it.
    public var name: String {
        switch self {
        case .string(let name, _), .bool(let name, _), .uint64(let name, _), .uint32(let name, _),
            .int32(let name, _), .strings(let name, _), .boolStrings(let name, _, _), .fileDescriptor(let name, _),
            .bindPaths(let name, _):
            return name
        case .execStart:
            return "ExecStart"
        }
    }
}

/// One bind mount for `BindPaths=` / `BindReadOnlyPaths=`.
public struct BindPath: Sendable, Equatable {
    public var source: String
    public var destination: String
    public var ignoreMissing: Bool

    public init(source: String, destination: String, ignoreMissing: Bool = false) {
        self.source = source
        self.destination = destination
        self.ignoreMissing = ignoreMissing
    }
}
