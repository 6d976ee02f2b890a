/// `MS_REC` from `<sys/mount.h>`: systemd-run sends it for `BindPaths=` entries (recursive bind, the default).
private let mountRecursiveFlag: UInt64 = 16384

extension UnitProperty {
    /// Appends this property as one `(sv)` struct of `StartTransientUnit`'s `a(sv)` argument.
    func append(to message: BusMessage) throws {
        try message.open("r", "sv")
        try message.append(string: name)
        switch self {
        case .string(_, let value):
            try message.open("v", "s")
            try message.append(string: value)
        case .bool(_, let value):
            try message.open("v", "b")
            try message.append(bool: value)
        case .uint64(_, let value):
            try message.open("v", "t")
            try message.append(uint64: value)
        case .uint32(_, let value):
            try message.open("v", "u")
            try message.append(uint32: value)
        case .int32(_, let value):
            try message.open("v", "i")
            try message.append(int32: value)
        case .strings(_, let values):
            try message.open("v", "as")
            try message.append(strings: values)
        case .boolStrings(_, let allow, let values):
            try message.open("v", "(bas)")
            try message.open("r", "bas")
            try message.append(bool: allow)
            try message.append(strings: values)
            try message.close()
        case .execStart(let path, let argv):
            try message.open("v", "a(sasb)")
            try message.open("a", "(sasb)")
            try message.open("r", "sasb")
            try message.append(string: path)
            try message.append(strings: argv)
            try message.append(bool: false)
            try message.close()
            try message.close()
        case .fileDescriptor(_, let fd):
            try message.open("v", "h")
            try message.append(fileDescriptor: fd)  // sd-bus dups fd; the caller still owns it
        case .ipAddresses(_, let prefixes):
            try appendStructs("iayu", prefixes, to: message) { prefix in
                try message.append(int32: prefix.family)
                try message.append(bytes: prefix.address)
                try message.append(uint32: prefix.prefixLength)
            }
        case .temporaryFileSystems(_, let entries):
            try appendStructs("ss", entries, to: message) { entry in
                try message.append(string: entry.path)
                try message.append(string: entry.options)
            }
        case .bindPaths(_, let paths):
            try appendStructs("ssbt", paths, to: message) { path in
                try message.append(string: path.source)
                try message.append(string: path.destination)
                try message.append(bool: path.ignoreMissing)
                try message.append(uint64: mountRecursiveFlag)
            }
        }
        try message.close()  // v
        try message.close()  // r
    }

    /// A variant holding an array of structs `(fields)`, each written by `body`.
    private func appendStructs<Item>(_ fields: String, _ items: [Item], to message: BusMessage, body: (Item) throws -> Void) throws {
        try message.open("v", "a(\(fields))")
        try message.open("a", "(\(fields))")
        for item in items {
            try message.open("r", fields)
            try body(item)
            try message.close()
        }
        try message.close()
    }
}
