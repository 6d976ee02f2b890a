/// How a plan's model entries match the ids clients send.
///
/// - An entry's `id` matches itself and its dated snapshots: the id, a hyphen, then a date as the providers write
///   them, `YYYYMMDD` (`claude-sonnet-4-5-20250929`) or `YYYY-MM-DD` (`gpt-4o-mini-2024-07-18`).
/// - An entry's `pattern` matches ids where each `*` stands for any run of characters. A pattern starts with at least
///   `minimumLiteralPrefix` characters before its first `*` (so that no pattern matches every model), may not start
///   with `*`, and must match the entry's own `id`.
public enum ModelMatch {
    /// The fewest characters a pattern has before its first `*`.
    public static let minimumLiteralPrefix = 4

    /// Whether `model` is `id` followed by a dated snapshot's suffix.
    public static func isSnapshot(_ model: String, of id: String) -> Bool {
        guard model.count > id.count + 1, model.hasPrefix(id),
            model.utf8[model.utf8.index(model.utf8.startIndex, offsetBy: id.utf8.count)] == UInt8(ascii: "-")
        else { return false }
        let date = Array(model.utf8.dropFirst(id.utf8.count + 1))
        func digits(_ slice: ArraySlice<UInt8>) -> Bool { slice.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } }
        if date.count == 8 { return digits(date[...]) }
        if date.count == 10 {
            return digits(date[0..<4]) && date[4] == UInt8(ascii: "-") && digits(date[5..<7]) && date[7] == UInt8(ascii: "-") && digits(date[8..<10])
        }
        return false
    }

    /// Whether `pattern` (with `*` for any run of characters) matches all of `model`.
    public static func glob(_ pattern: String, matches model: String) -> Bool {
        let parts = pattern.split(separator: "*", omittingEmptySubsequences: false).map { Array($0.utf8) }
        var rest = Array(model.utf8)[...]
        guard let first = parts.first, rest.starts(with: first) else { return false }
        rest = rest.dropFirst(first.count)
        if parts.count == 1 { return rest.isEmpty }
        for (index, part) in parts.enumerated().dropFirst() {
            if index == parts.count - 1 { return part.isEmpty || (rest.count >= part.count && rest.suffix(part.count).elementsEqual(part)) }
            guard !part.isEmpty else { continue }
            guard let found = firstRange(of: part, in: rest) else { return false }
            rest = rest[found.upperBound...]
        }
        return true
    }

    /// Why a pattern is refused (it could match too much), or nil when it is acceptable for an entry named `id`.
    public static func problem(pattern: String, id: String) -> String? {
        let prefix = pattern.prefix { $0 != "*" }
        if prefix.count < minimumLiteralPrefix {
            return
                "'\(pattern)' needs at least \(minimumLiteralPrefix) characters before its first '*' (such as 'gpt-5*'): a pattern may not match every model"
        }
        if !glob(pattern, matches: id) { return "'\(pattern)' does not match the entry's own id '\(id)'" }
        return nil
    }

    private static func firstRange(of part: [UInt8], in text: ArraySlice<UInt8>) -> Range<Int>? {
        guard part.count <= text.count else { return nil }
        var start = text.startIndex
        while start + part.count <= text.endIndex {
            if text[start..<start + part.count].elementsEqual(part) { return start..<start + part.count }
            start += 1
        }
        return nil
    }
}
