/// Reads one JSON value of a unit property as the type its D-Bus encoding needs.
/// Every error names `field`.
struct ValueParser {
    var value: JSONValue
    var field: String

    func bool() throws -> Bool {
        guard case .bool(let bool) = value else { throw wrongType("a boolean") }
        return bool
    }

    func string() throws -> String {
        guard case .string(let string) = value else { throw wrongType("a string") }
        return string
    }

    func strings() throws -> [String] {
        guard case .array(let items) = value else { throw wrongType("an array of strings") }
        return try items.enumerated().map { index, item in
            guard case .string(let string) = item else {
                throw ProfileError(.wrongType, field: "\(field)[\(index)]", "expected a string, found \(item.typeName)")
            }
            return string
        }
    }

    /// A list of capability names → their bit mask.
    func capabilities() throws -> UInt64 {
        guard case .array = value else { throw wrongType("an array of capability names") }
        var mask: UInt64 = 0
        for (index, name) in try strings().enumerated() {
            guard let bit = LinuxNames.capabilities[name] else {
                throw ProfileError(.unknownCapability, field: "\(field)[\(index)]", "unknown capability \"\(name)\"")
            }
            mask |= 1 << UInt64(bit)
        }
        return mask
    }

    /// `true` → 0 (nothing allowed), `false` → all flags, an array → the listed namespaces allowed.
    func allowedNamespaces() throws -> UInt64 {
        switch value {
        case .bool(let restrict):
            return restrict ? 0 : LinuxNames.allNamespaceFlags
        case .array:
            var flags: UInt64 = 0
            for (index, name) in try strings().enumerated() {
                guard let flag = LinuxNames.namespaces[name] else {
                    throw ProfileError(.invalidValue, field: "\(field)[\(index)]", "unknown namespace \"\(name)\"")
                }
                flags |= flag
            }
            return flags
        default:
            throw wrongType("a boolean or an array of namespace names")
        }
    }

    /// One or more assignments in unit-file syntax: optional leading `~` (deny-list), then names.
    /// - Parameter check: Returns a message for an unacceptable name, nil for a good one.
    func assignments(
        code: ProfileError.Code = .invalidValue, check: (String) -> String?
    ) throws -> [(allow: Bool, names: [String])] {
        let lines: [(String, String)]
        switch value {
        case .string(let string):
            lines = [(field, string)]
        case .array(let items):
            lines = try items.enumerated().map { index, item in
                guard case .string(let string) = item else {
                    throw ProfileError(.wrongType, field: "\(field)[\(index)]", "expected a string, found \(item.typeName)")
                }
                return ("\(field)[\(index)]", string)
            }
            if lines.isEmpty { throw ProfileError(.invalidValue, field: field, "expected at least one assignment") }
        default:
            throw wrongType("a string or an array of strings")
        }
        return try lines.map { lineField, line in
            var text = Substring(line)
            let allow = !text.hasPrefix("~")
            if !allow { text = text.dropFirst() }
            let names = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if names.isEmpty { throw ProfileError(.invalidValue, field: lineField, "expected at least one name") }
            for name in names {
                if let message = check(name) { throw ProfileError(code, field: lineField, message) }
            }
            return (allow, names)
        }
    }

    /// An octal string such as `"0077"`.
    func mode() throws -> UInt32 {
        guard case .string(let string) = value else { throw wrongType("an octal string such as \"0077\"") }
        guard (1...4).contains(string.count), let mode = UInt32(string, radix: 8), mode <= 0o7777 else {
            throw ProfileError(.invalidValue, field: field, "\"\(string)\" is not an octal mode such as \"0077\"")
        }
        return mode
    }

    /// A non-negative integer, or `"infinity"` (UInt64.max).
    func count() throws -> UInt64 {
        switch value {
        case .integer(let number) where number >= 0: return UInt64(number)
        case .unsigned(let number): return number
        case .integer: throw ProfileError(.invalidValue, field: field, "must not be negative")
        case .string("infinity"): return .max
        case .string(let string):
            throw ProfileError(.invalidValue, field: field, "\"\(string)\" is not a number or \"infinity\"")
        default: throw wrongType("an integer or \"infinity\"")
        }
    }

    /// Bytes: an integer, `"infinity"`, or a string with a K, M, G or T suffix (powers of 1024).
    func bytes() throws -> UInt64 {
        guard case .string(let string) = value, string != "infinity" else { return try count() }
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var digits = Substring(string)
        var multiplier: UInt64 = 1
        if let last = digits.last, let unit = units[last] {
            multiplier = unit
            digits = digits.dropLast()
        }
        guard let number = UInt64(digits) else {
            throw ProfileError(.invalidValue, field: field, "\"\(string)\" is not a size such as 512M")
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        if overflow { throw ProfileError(.invalidValue, field: field, "\"\(string)\" is too large") }
        return product
    }

    /// A duration in µs: a JSON number of seconds, or a string with a unit (us, ms, s, min, h), or `"infinity"`.
    func microseconds() throws -> UInt64 {
        let seconds: Double
        switch value {
        case .integer(let number): seconds = Double(number)
        case .unsigned(let number): seconds = Double(number)
        case .number(let number): seconds = number
        case .string("infinity"): return .max
        case .string(let string):
            let units: [(String, Double)] = [("us", 1e-6), ("ms", 1e-3), ("min", 60), ("sec", 1), ("s", 1), ("h", 3600)]
            guard let (suffix, scale) = units.first(where: { string.hasSuffix($0.0) }),
                let number = Double(string.dropLast(suffix.count).trimmingSpaces())
            else {
                throw ProfileError(.invalidValue, field: field, "\"\(string)\" is not a duration such as \"30s\"")
            }
            seconds = number * scale
        default:
            throw wrongType("a number of seconds or a duration string such as \"30s\"")
        }
        guard seconds >= 0, seconds < 1e12 else {
            throw ProfileError(.invalidValue, field: field, "duration out of range")
        }
        return UInt64((seconds * 1_000_000).rounded())
    }

    /// `"50%"` → 500000 µs of CPU time per second.
    func cpuQuotaPerSecond() throws -> UInt64 {
        let string = try string()
        guard string.hasSuffix("%"), let percent = UInt64(string.dropLast()), percent > 0 else {
            throw ProfileError(.invalidValue, field: field, "\"\(string)\" is not a percentage such as \"50%\"")
        }
        return percent * 10_000
    }

    private func wrongType(_ expected: String) -> ProfileError {
        ProfileError(.wrongType, field: field, "expected \(expected), found \(value.typeName)")
    }
}

extension StringProtocol {
    /// The string without leading and trailing spaces.
    fileprivate func trimmingSpaces() -> String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
