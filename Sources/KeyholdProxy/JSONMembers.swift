import Foundation

/// The members of one JSON object read without parsing their values: each member's key, decoded, and its value's byte
/// range. A scan, not a parse: finding one field of a large answer costs a walk over its bytes, with no allocation but
/// the keys'.
///
/// Keys are compared after their escapes are decoded (`"mod\u0065l"` is `model`), as a provider's parser reads them.
/// Expects JSON that a parser accepted or that a provider sent; on malformed input it returns nil rather than guess.
struct JSONMembers {
    /// One member: its decoded key and the byte range of its value.
    struct Member {
        var key: String
        var value: Range<Int>
    }

    /// The index of the object's opening brace.
    let openingBrace: Int
    /// The members in the order they appear.
    let members: [Member]

    /// Reads the object that starts at `start` (after any white space); nil when no whole object is there.
    init?(of bytes: [UInt8], from start: Int = 0) {
        var cursor = Cursor(bytes: bytes, index: start)
        cursor.skipSpace()
        guard cursor.index < bytes.count, bytes[cursor.index] == UInt8(ascii: "{") else { return nil }
        openingBrace = cursor.index
        cursor.index += 1
        var members: [Member] = []
        cursor.skipSpace()
        if cursor.index < bytes.count, bytes[cursor.index] == UInt8(ascii: "}") {
            self.members = members
            return
        }
        while cursor.index < bytes.count {
            cursor.skipSpace()
            guard let key = cursor.decodedString() else { return nil }
            cursor.skipSpace()
            guard cursor.index < bytes.count, bytes[cursor.index] == UInt8(ascii: ":") else { return nil }
            cursor.index += 1
            cursor.skipSpace()
            let valueStart = cursor.index
            guard cursor.skipValue() else { return nil }
            members.append(Member(key: key, value: valueStart..<cursor.index))
            cursor.skipSpace()
            guard cursor.index < bytes.count else { return nil }
            if bytes[cursor.index] == UInt8(ascii: "}") {
                self.members = members
                return
            }
            guard bytes[cursor.index] == UInt8(ascii: ",") else { return nil }
            cursor.index += 1
        }
        return nil
    }

    /// The value range of the last member named `key` (the one a provider's parser keeps), or nil.
    func value(of key: String) -> Range<Int>? {
        members.last { $0.key == key }?.value
    }

    /// The value range at a path of keys from the object at `start` (`["response", "usage"]`), or nil.
    static func value(at path: [String], in bytes: [UInt8], from start: Int = 0) -> Range<Int>? {
        var range: Range<Int>? = nil
        var position = start
        for key in path {
            guard let object = JSONMembers(of: bytes, from: position), let found = object.value(of: key) else { return nil }
            range = found
            position = found.lowerBound
        }
        return range
    }

    /// Walks the bytes of one JSON text.
    private struct Cursor {
        let bytes: [UInt8]
        var index: Int

        mutating func skipSpace() {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x09, 0x0A, 0x0D: index += 1
                default: return
                }
            }
        }

        /// Moves past the string at `index` (a quote) and its closing quote; whether it was whole and had an escape.
        mutating func skipString() -> (whole: Bool, escaped: Bool) {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return (false, false) }
            index += 1
            var escaped = false
            while index < bytes.count {
                switch bytes[index] {
                case UInt8(ascii: "\\"):
                    escaped = true
                    index += 2
                case UInt8(ascii: "\""):
                    index += 1
                    return (true, escaped)
                default:
                    index += 1
                }
            }
            return (false, escaped)
        }

        /// The string at `index`, decoded (escapes included); the index moves past its closing quote.
        mutating func decodedString() -> String? {
            let start = index
            let (whole, escaped) = skipString()
            guard whole else { return nil }
            let raw = bytes[start..<index]
            if !escaped { return String(decoding: raw.dropFirst().dropLast(), as: UTF8.self) }
            return try? JSONDecoder().decode(String.self, from: Data(raw))
        }

        /// Moves past one value: a string, a number, a literal, or an object or array with all it holds.
        mutating func skipValue() -> Bool {
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""): return skipString().whole
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "\""):
                        guard skipString().whole else { return false }
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
                scan: while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D: break scan
                    default: index += 1
                    }
                }
                return index > start
            }
        }
    }
}
