import Foundation
import Testing

@testable import KeyholdProxy

/// The usage journal's line codec: what a killed proxy leaves on disk is read back whole or not at all.
struct JournalLineTests {
    static let settled = JournalEntry(
        kind: "s", id: "req\tid\\with\nescapes", tenantID: 42, sandboxID: 7, model: "gpt-5-mini", reservedTokens: 4_100,
        reservedPicoUSD: 8_200_000, input: 8, cachedInput: 3, cacheWrite: 0, output: 7, reasoning: 2, picoUSD: 21_075, status: 200,
        charged: "usage", latencyMs: 12.5, time: "2026-12-07T15:00:00.000Z", keyProvider: "openai", keyVersion: 3, clampedFrom: 4_096,
        responseID: "resp_123")

    static func decode(_ line: [UInt8]) -> JournalEntry? {
        line.withUnsafeBufferPointer { JournalLine.decode(UnsafeBufferPointer(rebasing: $0[..<($0.count - ($0.last == 0x0A ? 1 : 0))])) }
    }

    @Test func anEntryRoundTripsWithItsTextEscaped() {
        var line: [UInt8] = []
        JournalLine.encode(Self.settled, into: &line)
        #expect(line.last == 0x0A && line.dropLast().filter { $0 == 0x0A }.isEmpty, "one line, whatever the text holds")
        #expect(Self.decode(line) == Self.settled)
        var reserved = Self.settled
        (reserved.kind, reserved.sandboxID, reserved.keyProvider, reserved.keyVersion, reserved.clampedFrom, reserved.responseID) =
            ("r", nil, nil, nil, nil, nil)
        var second: [UInt8] = []
        JournalLine.encode(reserved, into: &second)
        #expect(Self.decode(second) == reserved, "absent fields stay absent")
    }

    @Test func aLineCutShortOrWithAMalformedNumberIsRejectedWhole() {
        var line: [UInt8] = []
        JournalLine.encode(Self.settled, into: &line)
        for cut in [1, line.count / 3, line.count / 2, line.count - 12] {
            #expect(Self.decode(Array(line.prefix(cut)) + [0x0A]) == nil, "cut at \(cut)")
        }
        let text = String(decoding: line, as: UTF8.self).replacingOccurrences(of: "\t42\t", with: "\t4x2\t")
        #expect(Self.decode(Array(text.utf8)) == nil)
    }
}
