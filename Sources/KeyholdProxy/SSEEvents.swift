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

    /// Whatever is left of an unfinished event.
    var remainder: [UInt8] { pending }

    /// The JSON of an event's `data:` lines, when it is JSON (not `[DONE]`).
    static func dataJSON(_ event: [UInt8]) -> [String: Any]? {
        var data: [UInt8] = []
        for line in event.split(separator: 0x0A, omittingEmptySubsequences: true) {
            var line = Array(line)
            if line.last == 0x0D { line.removeLast() }
            guard line.starts(with: Array("data:".utf8)) else { continue }
            var value = line.dropFirst(5)
            if value.first == 0x20 { value = value.dropFirst() }
            if !data.isEmpty { data.append(0x0A) }
            data.append(contentsOf: value)
        }
        guard data.first == UInt8(ascii: "{") else { return nil }
        return (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any]
    }
}
