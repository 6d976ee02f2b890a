import Foundation

/// What an IP address reaches, for deciding whether a sandbox may connect to it.
public enum AddressClass: String, Sendable, Equatable {
    /// A public internet address.
    case global
    /// The host itself (127.0.0.0/8, ::1).
    case loopback
    /// A private or shared network (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7): the provider's own network.
    case `private`
    /// Link-local (169.254.0.0/16, fe80::/10): where clouds serve instance credentials. Never reachable.
    case linkLocal = "link-local"
    /// Unspecified, multicast, broadcast, documentation or reserved: never a destination.
    case special

    /// Whether a rule must be explicitly marked private for a sandbox to reach this class.
    public var needsPrivateFlag: Bool { self == .loopback || self == .private }

    /// Whether no rule can ever make this class reachable.
    public var isNeverReachable: Bool { self == .linkLocal || self == .special }

    /// Classifies an IPv4 address given as four bytes.
    public static func of(ipv4 bytes: [UInt8]) -> AddressClass {
        precondition(bytes.count == 4)
        let (a, b) = (bytes[0], bytes[1])
        switch a {
        case 127: return .loopback
        case 10: return .private
        case 172 where (16...31).contains(b): return .private
        case 192 where b == 168: return .private
        case 100 where (64...127).contains(b): return .private
        case 169 where b == 254: return .linkLocal
        case 0, 224...255: return .special
        case 192 where b == 0 && bytes[2] == 2, 198 where b == 51 && bytes[2] == 100, 203 where b == 0 && bytes[2] == 113: return .special
        case 198 where b == 18 || b == 19: return .private
        default: return .global
        }
    }

    /// Classifies an IPv6 address given as sixteen bytes (IPv4-mapped addresses by their IPv4 part).
    public static func of(ipv6 bytes: [UInt8]) -> AddressClass {
        precondition(bytes.count == 16)
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
            return of(ipv4: Array(bytes[12..<16]))
        }
        if bytes[0..<15].allSatisfy({ $0 == 0 }) { return bytes[15] == 1 ? .loopback : .special }
        // Addresses that carry an IPv4 address are what that address is: IPv4-compatible (::a.b.c.d), SIIT
        // (::ffff:0:a.b.c.d), NAT64 (64:ff9b::/96, which a NAT64 host translates), 6to4 (2002:AABB:CCDD::/48).
        if bytes[0..<12].allSatisfy({ $0 == 0 }) { return of(ipv4: Array(bytes[12..<16])) }
        if bytes[0..<8].allSatisfy({ $0 == 0 }) && bytes[8] == 0xff && bytes[9] == 0xff && bytes[10] == 0 && bytes[11] == 0 {
            return of(ipv4: Array(bytes[12..<16]))
        }
        if bytes[0..<12] == [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0] { return of(ipv4: Array(bytes[12..<16])) }
        if bytes[0] == 0 && bytes[1] == 0x64 && bytes[2] == 0xff && bytes[3] == 0x9b { return .special }  // local-use NAT64 64:ff9b:1::/48
        if bytes[0] == 0x20 && bytes[1] == 0x02 { return of(ipv4: Array(bytes[2..<6])) }
        if bytes[0] & 0xfe == 0xfc { return .private }
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0xc0 { return .private }  // deprecated site-local fec0::/10
        if bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80 { return .linkLocal }
        if bytes[0] == 0xff { return .special }
        if bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0x0d && bytes[3] == 0xb8 { return .special }
        return .global
    }

    /// Classifies a textual IPv4 or IPv6 address; nil when `text` is not an IP address.
    public static func of(literal text: String) -> AddressClass? {
        if let v4 = IPLiteral.ipv4(text) { return of(ipv4: v4) }
        if let v6 = IPLiteral.ipv6(text) { return of(ipv6: v6) }
        return nil
    }
}

/// Parses IP address literals without the C library (so that `KeyholdCore` stays free of I/O).
public enum IPLiteral {
    /// The four bytes of a dotted-quad IPv4 address, or nil.
    public static func ipv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber), let value = UInt8(part) else { return nil }
            if part.count > 1 && part.first == "0" { return nil }
            bytes.append(value)
        }
        return bytes
    }

    /// The sixteen bytes of an IPv6 address (without brackets, `::` and an embedded IPv4 tail allowed), or nil.
    public static func ipv6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.count <= 45 else { return nil }
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var result: [UInt16] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, allowIPv4Tail, piece.contains("."), let v4 = ipv4(String(piece)) {
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                result.append(value)
            }
            return result
        }
        if halves.count == 2 {
            sawGap = true
            guard let h = groups(halves[0], allowIPv4Tail: false), let t = groups(halves[1], allowIPv4Tail: true) else { return nil }
            head = h
            tail = t
        } else {
            guard let h = groups(halves[0], allowIPv4Tail: true) else { return nil }
            head = h
        }
        let total = head.count + tail.count
        guard sawGap ? total <= 7 : total == 8 else { return nil }
        let all = head + Array(repeating: 0, count: 8 - total) + tail
        return all.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xff)] }
    }
}
