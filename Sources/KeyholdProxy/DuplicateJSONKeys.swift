/// Finds a key that appears twice in one JSON object, at any depth.
///
/// Parsers disagree on duplicates: the proxy's decoder keeps the first, common provider stacks keep the last. A body
/// with `"model"` twice could then be checked against the plan as one model and run upstream as another, and a second
/// `max_tokens` or `stream_options` could shrink the reservation or hide the usage. The proxy refuses such bodies.
/// Keys are compared after their escapes are decoded (`"mod\u0065l"` is `"model"`), as a provider's parser would.
enum DuplicateJSONKeys {
    /// The first duplicated key, as a dotted path from the top (`stream_options.include_usage`, `messages[].role`), or
    /// nil. Expects valid JSON (checked before): on malformed input it stops and returns nil.
    static func first(in bytes: some Collection<UInt8>) -> String? {
        let bytes = Array(bytes)
        var scanner = Scanner(bytes: bytes)
        return scanner.run()
    }

    private struct Frame {
        var isObject: Bool
        var keys: Set<String> = []
        var expectsKey = true
        var lastKey = ""
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        var stack: [Frame] = []

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func run() -> String? {
            while index < bytes.count {
                let byte = bytes[index]
                switch byte {
                case UInt8(ascii: "{"):
                    stack.append(Frame(isObject: true))
                    index += 1
                case UInt8(ascii: "["):
                    stack.append(Frame(isObject: false))
                    index += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    _ = stack.popLast()
                    index += 1
                case UInt8(ascii: ","):
                    if let last = stack.indices.last, stack[last].isObject { stack[last].expectsKey = true }
                    index += 1
                case UInt8(ascii: "\""):
                    guard let string = readString() else { return nil }
                    if let last = stack.indices.last, stack[last].isObject, stack[last].expectsKey {
                        stack[last].expectsKey = false
                        stack[last].lastKey = string
                        if !stack[last].keys.insert(string).inserted { return path() }
                    }
                default:
                    index += 1
                }
            }
            return nil
        }

        /// The path to the key just read in the innermost object.
        private func path() -> String {
            var parts: [String] = []
            for (position, frame) in stack.enumerated() {
                if frame.isObject {
                    parts.append(frame.lastKey)
                } else if position > 0, !parts.isEmpty {
                    parts[parts.count - 1] += "[]"
                }
            }
            return parts.joined(separator: ".")
        }

        /// Reads the string starting at `index` (a quote), decoding its escapes; nil when it is malformed.
        private mutating func readString() -> String? {
            index += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flushRaw() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") {
                    flushRaw()
                    return String(scalars)
                }
                guard byte == UInt8(ascii: "\\") else {
                    raw.append(byte)
                    continue
                }
                flushRaw()
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "u"):
                    guard var code = readHex() else { return nil }
                    if (0xD800..<0xDC00).contains(code), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        index += 2
                        guard let low = readHex(), (0xDC00..<0xE000).contains(low) else { return nil }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                default: scalars.append(Unicode.Scalar(escape))
                }
            }
            return nil
        }

        private mutating func readHex() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                guard let digit = Self.hexValue(bytes[index]) else { return nil }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        private static func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt32(byte - UInt8(ascii: "A") + 10)
            default: return nil
            }
        }
    }
}
