import Foundation
import KeyholdTestTraits
import NIOCore
import NIOPosix
import Testing

@testable import KeyholdProxy

/// The proxy's hand-written formats: usage journal lines and the byte scans of server-sent events.
@Suite(.offCooperativePool) struct ProxyWireFormatTests {
    static func entry(model: String = "gpt-4o-mini", sandbox: Int64? = 7) -> JournalEntry {
        JournalEntry(
            kind: "s", id: UUID().uuidString, tenantID: 42, sandboxID: sandbox, model: model, reservedTokens: 1234, reservedPicoUSD: Int64.max,
            input: 10, cachedInput: 2, cacheWrite: 3, output: 4, reasoning: 1, picoUSD: -5, status: 200, charged: "usage", latencyMs: 0.1234,
            time: "2026-11-23T21:00:00.123Z")
    }

    static func roundTrip(_ entries: [JournalEntry], tail: [UInt8] = []) throws -> [JournalEntry] {
        var bytes: [UInt8] = []
        for entry in entries { JournalLine.encode(entry, into: &bytes) }
        bytes += tail
        let path = (NSTemporaryDirectory() as NSString).appendingPathComponent("keyhold-journal-\(UUID().uuidString).jsonl")
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { unlink(path) }
        return UsageJournal.read(path)
    }

    static func same(_ a: JournalEntry, _ b: JournalEntry) -> Bool {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(a)) == (try? encoder.encode(b))
    }

    @Test func aFullSegmentIsClosedAndCarriesTheReservationsStillInFlight() throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("keyhold-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let journal = try UsageJournal(directory: directory, eventLoops: [])
        let shard = journal.shards[0]
        var pending = Self.entry()
        pending.kind = "r"
        #expect(shard.reserve(pending))
        // Each settlement line is about 130 bytes: 3 MiB of them fill at least three segments.
        let settled = (0..<(3 * JournalShard.segmentLimit / 130)).map { _ in Self.entry() }
        for entry in settled { #expect(shard.settle(entry)) }
        let segments = JournalSegments.names(in: directory)
        #expect(segments.count >= 3, "\(segments)")
        var seen: [String: Int] = [:]
        for segment in segments {
            let path = journal.segments.path(segment)
            let entries = UsageJournal.read(path)
            #expect(entries.contains { $0.id == pending.id && $0.kind == "r" }, "every segment holds the reservation still in flight")
            for entry in entries where entry.kind == "s" { seen[entry.id, default: 0] += 1 }
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            #expect(size < JournalShard.segmentLimit + 4096, "\(segment): \(size) bytes")
        }
        #expect(seen.count == settled.count && seen.values.allSatisfy { $0 == 1 }, "every settlement exactly once")
    }

    /// Each event loop appends to its own segment; a flush takes exactly the segments no loop writes to any more,
    /// and the next process replays only what this one left behind.
    @Test func rotationHandsOverClosedSegmentsOfEveryShardAndNoOpenOne() throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("keyhold-journal-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer { try? loops.syncShutdownGracefully() }
        let eventLoops = Array(loops.makeIterator())
        let journal = try UsageJournal(directory: directory, eventLoops: eventLoops)
        #expect(journal.shards.count == 2)
        #expect(journal.shard(for: eventLoops[0]) !== journal.shard(for: eventLoops[1]), "one shard per loop")
        var firstIDs: Set<String> = []
        for loop in eventLoops {
            let entry = Self.entry()
            firstIDs.insert(entry.id)
            #expect(journal.shard(for: loop).settle(entry))
        }
        #expect(JournalSegments.names(in: directory).count == 2)
        let closed = try journal.rotate()
        #expect(closed.count == 2, "both loops' segments are closed: \(closed)")
        #expect(Set(closed.flatMap { UsageJournal.read(journal.segments.path($0)) }.map(\.id)) == firstIDs)
        let open = Set(journal.shards.map { JournalSegments.name($0.segment) })
        #expect(open.isDisjoint(with: closed), "a segment still written to is never handed over")
        for name in closed { unlink(journal.segments.path(name)) }
        #expect(try journal.rotate().count == 2, "empty segments are closed too")
        #expect(journal.leftBehind.isEmpty, "this process's own segments are not replayed at start")

        let stillOpen = journal.shards.map { JournalSegments.name($0.segment) }
        let next = try UsageJournal(directory: directory, eventLoops: eventLoops)
        #expect(Set(next.leftBehind).isSuperset(of: stillOpen), "a killed process's open segments are replayed by the next")
        #expect(next.leftBehind.count == 4, "the earlier process's open segments are left behind for replay")
    }

    @Test func journalLinesRoundTripEveryField() throws {
        let entries = [
            Self.entry(), Self.entry(sandbox: nil), Self.entry(model: "we\tird\\model\nname\r\u{e9}"),
            JournalEntry(kind: "r", id: "x", tenantID: Int64.min, sandboxID: 0, model: "", reservedTokens: 0, reservedPicoUSD: 0, time: ""),
            JournalEntry(
                kind: "s", id: "k", tenantID: 3, sandboxID: 9, model: "gpt-4o", reservedTokens: 1, reservedPicoUSD: 1, time: "t",
                keyProvider: "openai-compatible", keyVersion: 12),
        ]
        let read = try Self.roundTrip(entries)
        #expect(read.count == entries.count)
        for (a, b) in zip(entries, read) { #expect(Self.same(a, b)) }
    }

    @Test func aTornLastLineAndMalformedLinesAreSkippedAndJSONLinesStillRead() throws {
        let legacy = Self.entry()
        var json = try JSONEncoder().encode(legacy)
        json.append(0x0A)
        let entries = [Self.entry(), Self.entry()]
        var torn: [UInt8] = []
        JournalLine.encode(Self.entry(), into: &torn)
        torn.removeLast(5)
        let read = try Self.roundTrip(entries, tail: Array(json) + Array("s\tjunk\n".utf8) + torn)
        #expect(read.count == 3)
        #expect(Self.same(read[2], legacy))
    }

    @Test func linesWrittenBeforeTheKeyFieldsAreReadAsThePlatformsKey() throws {
        let platform = Self.entry()
        var keyed = Self.entry()
        (keyed.keyProvider, keyed.keyVersion, keyed.clampedFrom, keyed.responseID) = ("anthropic", 2, 64_000, "resp_abc")
        func fields(_ entry: JournalEntry) -> [ArraySlice<UInt8>] {
            var line: [UInt8] = []
            JournalLine.encode(entry, into: &line)
            return line.dropLast().split(separator: 0x09, omittingEmptySubsequences: false)
        }
        func line(_ fields: [ArraySlice<UInt8>]) -> [UInt8] { Array(fields.joined(separator: [0x09])) + [0x0A] }
        // A former line: its first 17 fields (its time ended the line).
        let former = line(Array(fields(platform).prefix(JournalLine.formerFieldCount)))
        // A provider without its version is not a whole entry.
        var halfKeyed = fields(keyed)
        halfKeyed[18] = []
        let read = try Self.roundTrip([keyed], tail: former + line(halfKeyed))
        #expect(read.count == 2)
        #expect(read[0].keyProvider == "anthropic" && read[0].keyVersion == 2 && read[0].clampedFrom == 64_000 && read[0].responseID == "resp_abc")
        #expect(Self.same(read[1], platform))
    }

    @Test func aClampSetsTheTopLevelMaximumAndLeavesEveryOtherByte() {
        func clamp(_ body: String, _ fields: [String] = ["max_tokens"]) -> String? {
            OutputMaximumRewrite.apply(ByteBuffer(string: body), fields: fields, value: 900).map { String(buffer: $0) }
        }
        #expect(clamp(#"{"model":"m", "max_tokens" : 64000 ,"temperature":0.70}"#) == #"{"model":"m", "max_tokens" : 900 ,"temperature":0.70}"#)
        #expect(
            clamp(#"{"tools":[{"max_tokens":5}],"max_tokens":10}"#) == #"{"tools":[{"max_tokens":5}],"max_tokens":900}"#, "nested keys are not it")
        #expect(clamp(#"{"max\u005ftokens":64000}"#) == #"{"max\u005ftokens":900}"#, "an escaped spelling is the same key")
        #expect(clamp(#"{"input":"a}\"b{,","max_output_tokens":1}"#, ["max_output_tokens"]) == #"{"input":"a}\"b{,","max_output_tokens":900}"#)
        #expect(clamp(#"{"model":"m"}"#, ["max_completion_tokens"]) == #"{"max_completion_tokens":900,"model":"m"}"#, "added when absent")
        #expect(clamp(#" {}"#, ["max_output_tokens"]) == #" {"max_output_tokens":900}"#)
        #expect(
            clamp(#"{"max_tokens":1,"max_completion_tokens":2}"#, ["max_tokens", "max_completion_tokens"])
                == #"{"max_tokens":900,"max_completion_tokens":900}"#)
        #expect(clamp("[1]") == nil && clamp(#"{"max_tokens":}"#) == nil)
    }

    @Test func anEventsDataIsItsDataLinesJoined() {
        func data(_ text: String) -> String { String(decoding: SSEEvents.data(Array(text.utf8)), as: UTF8.self) }
        #expect(data("data: {\"a\":1}\n\n") == #"{"a":1}"#)
        #expect(data("data: {\"a\":1}\r\n\r\n") == #"{"a":1}"#)
        #expect(data("data:[DONE]\n\n") == "[DONE]")
        #expect(data("event: message_delta\ndata: {\"b\":2}\n\n") == #"{"b":2}"#)
        #expect(data("data: first\ndata: second\n\n") == "first\nsecond")
        #expect(data(": a comment\n\n").isEmpty)
    }

    @Test func usageIsParsedOnlyWhenItCanBeThere() {
        #expect(SSEEvents.mayCarryUsage(Array(#"{"choices":[],"usage":{"prompt_tokens":1}}"#.utf8)))
        #expect(SSEEvents.mayCarryUsage(Array(#"{"type":"message_delta","usage" : {"output_tokens":1}}"#.utf8)))
        #expect(!SSEEvents.mayCarryUsage(Array(#"{"choices":[{"delta":{"content":"hi"}}],"usage":null}"#.utf8)))
        #expect(!SSEEvents.mayCarryUsage(Array(#"{"choices":[{"delta":{"content":"the \"usage\" key"}}]}"#.utf8)))
    }

    @Test func aResponsesEventsUsageAndIdAreFoundWithoutParsingTheOutput() throws {
        func read(_ text: String) -> ResponsesEventUsage? { ResponsesEventUsage(eventData: Array(text.utf8)) }
        let completed = try #require(
            read(
                #"{"type":"response.completed","response":{"id":"resp_\u0031","output":[{"content":[{"text":"\"usage\":{\"input_tokens\":999}"}]}],"#
                    + #""usage" : {"input_tokens":12,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,"#
                    + #""output_tokens_details":{"reasoning_tokens":3},"total_tokens":19}}}"#))
        #expect(completed.id == "resp_1", "an escaped id is decoded")
        #expect(completed.usage.inputTokens == 12 && completed.usage.inputTokensDetails?.cachedTokens == 4, "usage inside the output text is not it")
        #expect(completed.usage.outputTokens == 7 && completed.usage.outputTokensDetails?.reasoningTokens == 3)
        #expect(read(#"{"type":"response.created","response":{"id":"resp_1","usage":null}}"#) == nil)
        #expect(read(#"{"type":"x","usage":{"input_tokens":1},"response":{"id":"r"}}"#) == nil, "only the response's own usage counts")
        #expect(read(#"{"response":{"usage":{"input_tokens":1}"#) == nil, "a cut event is not read")
        #expect(JSONMembers.value(at: ["a", "b"], in: Array(#"{"a":{"b":1,"b":[2]}}"#.utf8)) == 16..<19, "the last of two keys, as providers read")
    }

    @Test func onlyEventsThatMayCarryDeltasAreScannedForOutput() {
        #expect(SSEEvents.mayCarryDelta(Array("event: response.output_text.delta\ndata: {}\n\n".utf8)))
        #expect(SSEEvents.mayCarryDelta(Array("event: response.function_call_arguments.delta\r\ndata: {}\r\n\r\n".utf8)))
        #expect(SSEEvents.mayCarryDelta(Array("data: {}\n\n".utf8)), "an unnamed event may carry anything")
        #expect(!SSEEvents.mayCarryDelta(Array("event: response.completed\ndata: {}\n\n".utf8)))
        #expect(!SSEEvents.mayCarryDelta(Array("event: response.output_text.done\ndata: {}\n\n".utf8)))
    }

    @Test func outputCharactersAreCountedNeverBelowTheStringsCount() {
        let openAI = #"{"choices":[{"delta":{"content":"h\u00e9\"llo\n"}},{"delta":{"content":"\"content\":\"x"}}],"x":{"content":null}}"#
        #expect(SSEEvents.stringCharacters(ofKey: SSEEvents.contentKey, in: Array(openAI.utf8)) == 7 + 12)
        let anthropic = #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"été 🙂"}}"#
        #expect(SSEEvents.stringCharacters(ofKey: SSEEvents.textKey, in: Array(anthropic.utf8)) == 5)
        #expect(SSEEvents.stringCharacters(ofKey: SSEEvents.textKey, in: Array(#"{"text":"unterminated"#.utf8)) >= 0)
    }
}
