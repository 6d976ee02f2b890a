/// A decoded `application/x-www-form-urlencoded` body (`name=value&...`, `+` a space, `%XX` a byte), as a browser
/// posts a form. Every name and value must be UTF-8; a name given twice keeps its last value.
///
/// It may hold a pasted key: the bytes decoded are zeroed once they are a string, and nothing here logs them.
public struct FormURLEncoded: Sendable {
    /// The body is not UTF-8 text once decoded.
    public struct NotUTF8: Error, Sendable {}

    private var fields: [String: String] = [:]

    /// Decodes a form's bytes.
    /// - Throws: `NotUTF8` when a name or value is not UTF-8 once decoded.
    public init(bytes: some Collection<UInt8>) throws(NotUTF8) {
        for pair in Array(bytes).split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0])
            fields[name] = parts.count > 1 ? try Self.decode(parts[1]) : ""
        }
    }

    /// The field's value, or nil when the form has no such field.
    public subscript(_ name: String) -> String? { fields[name] }

    private static func decode(_ encoded: ArraySlice<UInt8>) throws(NotUTF8) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(encoded.count)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let byte = encoded[index]
            if byte == UInt8(ascii: "+") {
                bytes.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"), index + 2 < encoded.endIndex, let high = hex(encoded[index + 1]), let low = hex(encoded[index + 2]) {
                bytes.append(high << 4 | low)
                index += 2
            } else {
                bytes.append(byte)
            }
            index += 1
        }
        defer { for position in bytes.indices { bytes[position] = 0 } }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw NotUTF8() }
        return text
    }

    private static func hex(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
