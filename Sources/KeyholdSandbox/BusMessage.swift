import CSystemd
import Glibc

/// An sd-bus message being built or read (internal: the variadic sd-bus helpers are unavailable in Swift).
///
/// Ownership: the instance owns one reference to the `sd_bus_message` and drops it in `deinit`.
final class BusMessage {
    /// The `sd_bus_message *`; owned (one reference) by this object.
    let pointer: OpaquePointer

    /// Takes over one reference to `pointer` (the caller must not unref it).
    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        sd_bus_message_unref(pointer)
    }

    // MARK: Building

    /// Appends a basic value; `value` points to the value (to the first character for strings).
    private func appendRaw(_ type: Character, _ value: UnsafeRawPointer, what: String) throws {
        try BusMessage.check(sd_bus_message_append_basic(pointer, type.cChar, value), "append \(what)")
    }

    func append(string value: String) throws {
        try value.withCString { try appendRaw("s", $0, what: "string") }
    }

    func append(objectPath value: String) throws {
        try value.withCString { try appendRaw("o", $0, what: "object path") }
    }

    func append(bool value: Bool) throws {
        var int: Int32 = value ? 1 : 0  // D-Bus booleans are 32-bit
        try withUnsafePointer(to: &int) { try appendRaw("b", $0, what: "bool") }
    }

    func append(uint64 value: UInt64) throws {
        var value = value
        try withUnsafePointer(to: &value) { try appendRaw("t", $0, what: "uint64") }
    }

    func append(uint32 value: UInt32) throws {
        var value = value
        try withUnsafePointer(to: &value) { try appendRaw("u", $0, what: "uint32") }
    }

    func append(int32 value: Int32) throws {
        var value = value
        try withUnsafePointer(to: &value) { try appendRaw("i", $0, what: "int32") }
    }

    /// Appends a Unix file descriptor (`h`). sd-bus duplicates `fd`; the caller keeps and closes its own.
    func append(fileDescriptor fd: Int32) throws {
        var fd = fd
        try withUnsafePointer(to: &fd) { try appendRaw("h", $0, what: "file descriptor") }
    }

    /// Appends a byte array (`ay`).
    func append(bytes values: [UInt8]) throws {
        try values.withUnsafeBytes { buffer in
            try BusMessage.check(sd_bus_message_append_array(pointer, Character("y").cChar, buffer.baseAddress, buffer.count), "append bytes")
        }
    }

    func append(strings values: [String]) throws {
        try open("a", "s")
        for value in values { try append(string: value) }
        try close()
    }

    /// Opens a container: `a` (array), `r` (struct), `v` (variant) or `e` (dict entry).
    func open(_ type: Character, _ contents: String) throws {
        try BusMessage.check(
            sd_bus_message_open_container(pointer, type.cChar, contents), "open container \(type)\(contents)")
    }

    func close() throws {
        try BusMessage.check(sd_bus_message_close_container(pointer), "close container")
    }

    // MARK: Reading

    private func readRaw(_ type: Character, _ out: UnsafeMutableRawPointer) throws {
        let r = sd_bus_message_read_basic(pointer, type.cChar, out)
        if r == 0 { throw BusMessage.shapeError("expected a value of type \(type), found the end of a container") }
        try BusMessage.check(r, "read \(type)")
    }

    func readString() throws -> String {
        var value: UnsafePointer<CChar>? = nil  // borrowed from the message; copied below
        try readRaw("s", &value)
        return value.map { String(cString: $0) } ?? ""
    }

    func readObjectPath() throws -> String {
        var value: UnsafePointer<CChar>? = nil  // borrowed from the message; copied below
        try readRaw("o", &value)
        return value.map { String(cString: $0) } ?? ""
    }

    func readBool() throws -> Bool {
        var value: Int32 = 0
        try readRaw("b", &value)
        return value != 0
    }

    func readUInt32() throws -> UInt32 {
        var value: UInt32 = 0
        try readRaw("u", &value)
        return value
    }

    func readInt32() throws -> Int32 {
        var value: Int32 = 0
        try readRaw("i", &value)
        return value
    }

    func readUInt64() throws -> UInt64 {
        var value: UInt64 = 0
        try readRaw("t", &value)
        return value
    }

    /// Reads an `ay` array.
    func readBytes() throws -> [UInt8] {
        var data: UnsafeRawPointer? = nil  // borrowed from the message; copied below
        var size = 0
        try BusMessage.check(sd_bus_message_read_array(pointer, Character("y").cChar, &data, &size), "read ay")
        guard let data, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: data, count: size))
    }

    /// Enters a container; returns false at the end of the enclosing array.
    @discardableResult
    func enter(_ type: Character, _ contents: String) throws -> Bool {
        let r = sd_bus_message_enter_container(pointer, type.cChar, contents)
        try BusMessage.check(r, "enter container \(type)\(contents)")
        return r > 0
    }

    func exit() throws {
        try BusMessage.check(sd_bus_message_exit_container(pointer), "exit container")
    }

    /// Skips values of the given signature.
    func skip(_ types: String) throws {
        try BusMessage.check(sd_bus_message_skip(pointer, types), "skip \(types)")
    }

    // MARK: Errors

    static func check(_ r: Int32, _ what: String) throws {
        if r < 0 {
            throw SystemdError(
                code: .protocolError,
                message: "sd-bus could not \(what): \(String(cString: strerror(-r))). This is a bug in Keyhold; report it.",
                errno: -r)
        }
    }

    static func shapeError(_ text: String) -> SystemdError {
        SystemdError(code: .protocolError, message: "Unexpected reply from systemd: \(text).")
    }
}

extension Character {
    /// The character as a C `char` (D-Bus type codes are ASCII).
    var cChar: CChar { CChar(bitPattern: asciiValue ?? 0) }
}
