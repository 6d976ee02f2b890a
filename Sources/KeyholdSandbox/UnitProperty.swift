import KeyholdCore

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
    /// Signature `a(iayu)`: `IPAddressAllow` / `IPAddressDeny` prefixes (family, address bytes, prefix length).
    case ipAddresses(String, [IPAddressPrefix])
    /// Signature `a(ss)`: `TemporaryFileSystem` entries (path, mount options).
    case temporaryFileSystems(String, [TemporaryFileSystem])

    /// The property's name as systemd knows it.
    public var name: String {
        switch self {
        case .string(let name, _), .bool(let name, _), .uint64(let name, _), .uint32(let name, _),
            .int32(let name, _), .strings(let name, _), .boolStrings(let name, _, _), .fileDescriptor(let name, _),
            .bindPaths(let name, _), .ipAddresses(let name, _), .temporaryFileSystems(let name, _):
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

/// One address prefix of `IPAddressAllow=` / `IPAddressDeny=`.
public struct IPAddressPrefix: Sendable, Equatable {
    /// `AF_INET` or `AF_INET6`.
    public var family: Int32
    public var address: [UInt8]
    public var prefixLength: UInt32

    public init(family: Int32, address: [UInt8], prefixLength: UInt32) {
        self.family = family
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses what systemd accepts: `any`, `localhost`, `link-local`, `multicast`, or an address with an optional `/prefix`.
    public static func parse(_ text: String) -> [IPAddressPrefix]? {
        let v4 = Int32(2)
        let v6 = Int32(10)
        switch text {
        case "any":
            return [
                .init(family: v4, address: [0, 0, 0, 0], prefixLength: 0),
                .init(family: v6, address: .init(repeating: 0, count: 16), prefixLength: 0),
            ]
        case "localhost":
            return [
                .init(family: v4, address: [127, 0, 0, 0], prefixLength: 8),
                .init(family: v6, address: .init(repeating: 0, count: 15) + [1], prefixLength: 128),
            ]
        case "link-local":
            return [
                .init(family: v4, address: [169, 254, 0, 0], prefixLength: 16),
                .init(family: v6, address: [0xfe, 0x80] + .init(repeating: 0, count: 14), prefixLength: 64),
            ]
        case "multicast":
            return [
                .init(family: v4, address: [224, 0, 0, 0], prefixLength: 4),
                .init(family: v6, address: [0xff] + .init(repeating: 0, count: 15), prefixLength: 8),
            ]
        default:
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2 else { return nil }
            let prefix = parts.count == 2 ? UInt32(parts[1]) : nil
            if parts.count == 2 && prefix == nil { return nil }
            if let bytes = IPLiteral.ipv4(String(parts[0])) {
                guard (prefix ?? 32) <= 32 else { return nil }
                return [.init(family: v4, address: bytes, prefixLength: prefix ?? 32)]
            }
            if let bytes = IPLiteral.ipv6(String(parts[0])) {
                guard (prefix ?? 128) <= 128 else { return nil }
                return [.init(family: v6, address: bytes, prefixLength: prefix ?? 128)]
            }
            return nil
        }
    }
}

/// One `TemporaryFileSystem=` entry: a tmpfs mounted over `path` with `options` (`ro`, `mode=0755`...).
public struct TemporaryFileSystem: Sendable, Equatable {
    public var path: String
    public var options: String

    public init(path: String, options: String) {
        self.path = path
        self.options = options
    }
}
