import CSeccomp

extension UnitPropertyTable {
    /// Converts one profile entry into the D-Bus properties systemd expects.
    /// - Parameters:
    ///   - name: The property's name as written in the profile.
    ///   - value: Its JSON value.
    ///   - field: The field path used in errors (`unit.ProtectSystem`).
    /// - Throws: ``ProfileError`` naming `field`.
    static func properties(name: String, value: JSONValue, field: String) throws -> [UnitProperty] {
        if reserved.contains(name) {
            throw ProfileError(.reservedProperty, field: field, "set by keyhold itself, not by a profile")
        }
        guard let kind = kind(of: name) else {
            throw ProfileError(.unknownProperty, field: field, "unknown property")
        }
        let parser = ValueParser(value: value, field: field)
        switch kind {
        case .bool:
            return [.bool(name, try parser.bool())]
        case .choice(let choices):
            let string = try parser.string()
            guard choices.contains(string) else {
                throw ProfileError(.invalidValue, field: field, "\"\(string)\" is not one of \(choices.joined(separator: ", "))")
            }
            return [.string(name, string)]
        case .slice:
            let string = try parser.string()
            guard string.hasSuffix(".slice"), string.count > 6, !string.contains("/") else {
                throw ProfileError(.invalidValue, field: field, "expected a slice unit name such as \"keyhold.slice\"")
            }
            return [.string(name, string)]
        case .capabilities:
            return [.uint64(name, try parser.capabilities())]
        case .namespaces:
            return [.uint64(name, try parser.allowedNamespaces())]
        case .addressFamilies:
            return try parser.assignments { word in
                guard LinuxNames.addressFamilies.contains(word) else { return "unknown address family \"\(word)\"" }
                return nil
            }.map { .boolStrings(name, $0.allow, $0.names) }
        case .syscallFilter:
            return try parser.assignments(code: .unknownSyscall) { word in
                if word.hasPrefix("@") {
                    return LinuxNames.syscallGroups.contains(word) ? nil : "unknown syscall group \"\(word)\""
                }
                return seccomp_syscall_resolve_name(word) == __NR_SCMP_ERROR ? "unknown syscall \"\(word)\"" : nil
            }.map { .boolStrings(name, $0.allow, $0.names) }
        case .architectures:
            let names = try parser.strings()
            if let index = names.firstIndex(where: { !architectures.contains($0) }) {
                throw ProfileError(.invalidValue, field: "\(field)[\(index)]", "unknown architecture \"\(names[index])\"")
            }
            return [.strings(name, names)]
        case .directories:
            let names = try parser.strings()
            if let index = names.firstIndex(where: { $0.isEmpty || $0.hasPrefix("/") || $0.split(separator: "/").contains("..") }) {
                throw ProfileError(.invalidValue, field: "\(field)[\(index)]", "expected a relative directory name")
            }
            return [.strings(name, names)]
        case .errno:
            let string = try parser.string()
            guard let number = LinuxNames.errnos[string] else {
                throw ProfileError(.invalidValue, field: field, "unknown errno name \"\(string)\"")
            }
            return [.int32(name, number)]
        case .mode:
            return [.uint32(name, try parser.mode())]
        case .bytes:
            return [.uint64(name, try parser.bytes())]
        case .count:
            return [.uint64(name, try parser.count())]
        case .resourceLimit:
            let limit = try parser.count()
            return [.uint64(name, limit), .uint64(name + "Soft", limit)]
        case .seconds(let busName):
            return [.uint64(busName, try parser.microseconds())]
        case .cpuQuota:
            return [.uint64("CPUQuotaPerSecUSec", try parser.cpuQuotaPerSecond())]
        case .ipAddresses:
            var prefixes: [IPAddressPrefix] = []
            for (index, text) in try parser.strings().enumerated() {
                guard let parsed = IPAddressPrefix.parse(text) else {
                    throw ProfileError(
                        .invalidValue, field: "\(field)[\(index)]", "expected any, localhost, link-local, multicast or ADDRESS[/PREFIX]")
                }
                prefixes += parsed
            }
            return [.ipAddresses(name, prefixes)]
        case .temporaryFileSystems:
            var entries: [TemporaryFileSystem] = []
            for (index, text) in try parser.strings().enumerated() {
                let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
                guard let path = parts.first, path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                    throw ProfileError(.invalidValue, field: "\(field)[\(index)]", "expected an absolute path with optional :OPTIONS, e.g. /run:ro")
                }
                entries.append(TemporaryFileSystem(path: path, options: parts.count == 2 ? parts[1] : ""))
            }
            return [.temporaryFileSystems(name, entries)]
        case .absolutePaths:
            let paths = try parser.strings()
            if let index = paths.firstIndex(where: { !$0.trimmingPrefix("-").hasPrefix("/") || $0.split(separator: "/").contains("..") }) {
                throw ProfileError(.invalidValue, field: "\(field)[\(index)]", "expected an absolute path (a leading '-' ignores a missing one)")
            }
            return [.strings(name, paths)]
        }
    }
}
