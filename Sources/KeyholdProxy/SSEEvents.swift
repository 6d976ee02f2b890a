import Foundation

/// Splits a server-sent-events byte stream into whole events as the bytes arrive.
///
/// An event ends with a blank line (`\n\n`, or `\r\n\r\n`). Bytes of an unfinished event are kept until
/// the rest arrives, so each event can be inspected and forwarded whole.
struct SSEEvents {
    private var pending: [UInt8] = []

    /// Appends bytes; returns every event completed by them, each with its terminating blank line.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [[UInt8]] {
        pending.append(contentsOf: bytes)
        var events: [[UInt8]] = []
        var start = 0
        var index = 0
        while index + 1 < pending.count {
            if pending[index] == 0x0A && pending[index + 1] == 0x0A {
                events.append(Array(pending[start...index + 1]))
                index += 2
                start = index
            } else if index + 3 < pending.count, pending[index] == 0x0D, pending[index + 1] == 0x0A, pending[index + 2] == 0x0D,
                pending[index + 3] == 0x0A
            {
                events.append(Array(pending[start...index + 3]))
                index += 4
                start = index
            } else {
                index += 1
            }
        }
        if start > 0 { pending.removeFirst(start) }
        return events
    }

    /// An event's `data:` lines joined with newlines (the `data:` prefix and one following space removed).
    static func data(_ event: [UInt8]) -> [UInt8] {
        // The common event, one `data:` line: its value without splitting.
        if event.starts(with: "data: ".utf8), let newline = event.firstIndex(of: 0x0A),
            event[(newline + 1)...].allSatisfy({ $0 == 0x0A || $0 == 0x0D })
        {
            let end = newline > 6 && event[newline - 1] == 0x0D ? newline - 1 : newline
            return Array(event[6..<end])
        }
        var data: [UInt8] = []
        data.reserveCapacity(event.count)
        for line in event.split(separator: 0x0A, omittingEmptySubsequences: true) {
            var line = line[...]
            if line.last == 0x0D { line = line.dropLast() }
            guard line.starts(with: "data:".utf8) else { continue }
            var value = line.dropFirst(5)
            if value.first == 0x20 { value = value.dropFirst() }
            if !data.isEmpty { data.append(0x0A) }
            data.append(contentsOf: value)
        }
        return data
    }

    /// Whether an event may carry output deltas: every event but one whose `event:` line (its first) names a type that
    /// does not end in `.delta`. The Responses API names each event so; its larger events (`response.completed` with
    /// the whole output, `response.output_text.done`) then cost no output scan.
    static func mayCarryDelta(_ event: [UInt8]) -> Bool {
        let prefix = Self.eventPrefix
        guard event.starts(with: prefix), var end = event.firstIndex(of: 0x0A) else { return true }
        if event[end - 1] == 0x0D { end -= 1 }
        return event[prefix.count..<end].reversed().starts(with: Self.deltaSuffixReversed)
    }

    static let eventPrefix = Array("event: ".utf8)
    static let deltaSuffixReversed = Array(".delta".utf8.reversed())

    /// Whether the data may hold a `usage` object: it has a `"usage"` key whose value is not `null`.
    ///
    /// A byte scan, so that only the events that can carry usage are parsed. It errs on the side of parsing:
    /// any `"usage"` not followed by `: null` counts, wherever it is.
    static func mayCarryUsage(_ data: [UInt8]) -> Bool {
        let key = Self.usageKey
        return data.withUnsafeBufferPointer { bytes in
            guard bytes.count >= key.count else { return false }
            var index = 0
            while index <= bytes.count - key.count {
                guard bytes[index] == 0x22, bytes[index + 1] == key[1], (0..<key.count).allSatisfy({ bytes[index + $0] == key[$0] }) else {
                    index += 1
                    continue
                }
                var next = index + key.count
                skipSpace(bytes, &next)
                guard next < bytes.count, bytes[next] == UInt8(ascii: ":") else {
                    index = next
                    continue
                }
                next += 1
                skipSpace(bytes, &next)
                let isNull =
                    next + 4 <= bytes.count && bytes[next] == UInt8(ascii: "n") && bytes[next + 1] == UInt8(ascii: "u")
                    && bytes[next + 2] == UInt8(ascii: "l") && bytes[next + 3] == UInt8(ascii: "l")
                if !isNull { return true }
                index = next + 4
            }
            return false
        }
    }

    static let usageKey = Array(#""usage""#.utf8)
    /// The keys whose strings are a stream's output text: OpenAI's `content`, Anthropic's `text`.
    static let contentKey = Array("content".utf8)
    /// The Responses API's output text comes in `response.output_text.delta` events' `delta`.
    static let deltaKey = Array("delta".utf8)
    static let textKey = Array("text".utf8)

    /// Characters in the string values of every `key` in a JSON text, at any depth (a byte scan, not a parse).
    ///
    /// Counts Unicode scalars (each escape sequence as one), so never fewer than the strings' `count` of
    /// characters: an estimate that only ever errs high, enough to bound a runaway stream.
    static func stringCharacters(ofKey key: [UInt8], in data: [UInt8]) -> Int {
        return data.withUnsafeBufferPointer { bytes in
            var total = 0
            var index = 0
            while index < bytes.count {
                guard bytes[index] == 0x22 else {
                    index += 1
                    continue
                }
                // A string starts here: find its end, noting whether it is `key`.
                let start = index + 1
                var end = start
                while end < bytes.count && bytes[end] != 0x22 { end += bytes[end] == 0x5C ? 2 : 1 }
                guard end < bytes.count else { return total }
                let isKey = end - start == key.count && (0..<key.count).allSatisfy { bytes[start + $0] == key[$0] }
                index = end + 1
                guard isKey else { continue }
                var next = index
                skipSpace(bytes, &next)
                guard next < bytes.count, bytes[next] == UInt8(ascii: ":") else { continue }
                next += 1
                skipSpace(bytes, &next)
                guard next < bytes.count, bytes[next] == 0x22 else { continue }
                // The value: count scalars up to its closing quote, and carry on after it.
                var position = next + 1
                while position < bytes.count && bytes[position] != 0x22 {
                    if bytes[position] == 0x5C {
                        let escape = position + 1 < bytes.count ? bytes[position + 1] : 0
                        position += escape == UInt8(ascii: "u") ? 6 : 2
                        total += 1
                    } else {
                        if bytes[position] & 0xC0 != 0x80 { total += 1 }
                        position += 1
                    }
                }
                index = position + 1
            }
            return total
        }
    }

    private static func skipSpace(_ bytes: UnsafeBufferPointer<UInt8>, _ index: inout Int) {
        while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 || bytes[index] == 0x0A || bytes[index] == 0x0D { index += 1 }
    }
}
