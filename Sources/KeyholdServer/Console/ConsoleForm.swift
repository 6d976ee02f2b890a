import Hummingbird
import KeyholdCore
import NIOCore

/// A posted console form (`application/x-www-form-urlencoded`), read with a size limit and checked to be UTF-8.
///
/// It may hold a pasted key: it is never logged, and its values are never put back into a page.
struct ConsoleForm {
    /// The largest form body the console reads (a key is a few hundred bytes).
    static let maximumBytes = 16 * 1024

    private var fields: [String: String] = [:]

    /// Reads and decodes the request's body.
    /// - Throws: `ConsolePageError` 413 when it is larger than 16 KiB, 400 when it is not UTF-8 text.
    static func read(_ request: Request) async throws -> ConsoleForm {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maximumBytes)
        } catch is NIOTooManyBytesError {
            throw ConsolePageError(
                .contentTooLarge, "The form was larger than 16 KiB, so nothing was changed. A provider key is far shorter: copy just the key.")
        }
        return try ConsoleForm(bytes: Array(buffer.readableBytesView))
    }

    /// Decodes `name=value&...` (`+` is a space, `%XX` a byte); every name and value must be UTF-8.
    init(bytes: [UInt8]) throws {
        for pair in bytes.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0])
            let value = parts.count > 1 ? try Self.decode(parts[1]) : ""
            fields[name] = value
        }
    }

    /// The field's value, or nil when the form has no such field.
    subscript(_ name: String) -> String? { fields[name] }

    private static func decode(_ encoded: ArraySlice<UInt8>) throws -> String {
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
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ConsolePageError(
                .badRequest, "What was pasted is not UTF-8 text, so nothing was changed. Copy the key again from your provider's dashboard.")
        }
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
