import Foundation
import NIOCore

/// Sets a request body's output maximum (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) to a clamped
/// value in place: the value's bytes are replaced, every other byte of the body stays as the agent sent it, and a
/// field the body lacks is added after the opening brace. A scan, not a parse and a re-serialization: clamping costs
/// microseconds, and numbers, key order and spacing reach the provider untouched.
///
/// Keys are compared after their escapes are decoded (`"max\u005ftokens"` is `max_tokens`), as a provider's parser
/// reads them, so an escaped spelling cannot keep its larger value.
enum OutputMaximumRewrite {
    /// The body with each top-level member named in `fields` set to `value`; nil when the body is not one JSON object.
    static func apply(_ body: ByteBuffer, fields: [String], value: Int) -> ByteBuffer? {
        let bytes = Array(body.readableBytesView)
        var scanner = Scanner(bytes: bytes)
        guard let members = scanner.topLevelMembers() else { return nil }
        let replaced = members.filter { fields.contains($0.key) }
        let missing = fields.filter { field in !replaced.contains { $0.key == field } }
        let number = Array(String(value).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 40)
        var position = 0
        if !missing.isEmpty {
            out += bytes[...scanner.openingBrace]
            position = scanner.openingBrace + 1
            out += Array(missing.map { "\"\($0)\":\(value)" }.joined(separator: ",").utf8)
            if !members.isEmpty { out.append(UInt8(ascii: ",")) }
        }
        for member in replaced.sorted(by: { $0.value.lowerBound < $1.value.lowerBound }) {
            out += bytes[position..<member.value.lowerBound]
            out += number
            position = member.value.upperBound
        }
        out += bytes[position...]
        return ByteBuffer(bytes: out)
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var openingBrace = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        /// Each member of the top-level object: its decoded key and its value's byte range.
        mutating func topLevelMembers() -> [(key: String, value: Range<Int>)]? {
            skipSpace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "{") else { return nil }
            openingBrace = index
            index += 1
            var members: [(key: String, value: Range<Int>)] = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") { return members }
            while index < bytes.count {
                skipSpace()
                guard let key = string() else { return nil }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return nil }
                index += 1
                skipSpace()
                let start = index
                guard skipValue() else { return nil }
                members.append((key, start..<index))
                skipSpace()
                guard index < bytes.count else { return nil }
                if bytes[index] == UInt8(ascii: "}") { return members }
                guard bytes[index] == UInt8(ascii: ",") else { return nil }
                index += 1
            }
            return nil
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// A string at `index`, decoded (escapes included); the index moves past its closing quote.
        mutating func string() -> String? {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
            let start = index
            index += 1
            var escaped = false
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\\") {
                    escaped = true
                    index += 1
                } else if byte == UInt8(ascii: "\"") {
                    let raw = bytes[start..<index]
                    if !escaped { return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self) }
                    return try? JSONDecoder().decode(String.self, from: Data(raw))
                }
            }
            return nil
        }

        /// Moves past one value (a string, a number, a literal, or an object or array with all it holds).
        mutating func skipValue() -> Bool {
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""): return string() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "\""):
                        guard string() != nil else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            index += 1
                            return true
                        }
                    default: break
                    }
                    index += 1
                }
                return false
            default:
                let start = index
                while index < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
                return index > start
            }
        }
    }
}
