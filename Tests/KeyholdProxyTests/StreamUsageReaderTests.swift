import Foundation
import Testing

@testable import KeyholdProxy

/// The usage readers of the three stream shapes, on streams recorded from the official SDKs' calls to the stand-in
/// provider (`Tests/FuzzCorpus/stream-usage`, deploy/record-fuzz-corpus.py): the numbers the provider reported are
/// the numbers charged, however the bytes are split.
struct StreamUsageReaderTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("FuzzCorpus/stream-usage")

    /// The recorded stream whose first bytes are `prefix`.
    static func recorded(startingWith prefix: String) throws -> [UInt8] {
        for name in try FileManager.default.contentsOfDirectory(atPath: corpus.path) {
            let bytes = try [UInt8](Data(contentsOf: corpus.appendingPathComponent(name)))
            if bytes.starts(with: Array(prefix.utf8)) { return bytes }
        }
        throw CocoaError(.fileNoSuchFile)
    }

    /// Reads `stream` fed in parts of `size` bytes; returns the reader and the events it would forward.
    static func read(_ stream: [UInt8], format: WireFormat, isResponses: Bool, partSize size: Int) -> (StreamUsageReader, Int) {
        var events = SSEEvents()
        var reader = StreamUsageReader(format: format, isResponses: isResponses, clientWantsUsage: false)
        var forwarded = 0
        for start in stride(from: 0, to: stream.count, by: size) {
            for event in events.feed(stream[start..<min(start + size, stream.count)]) where reader.read(event).forward { forwarded += 1 }
        }
        return (reader, forwarded)
    }

    @Test(arguments: [1, 7, 4096])
    func anOpenAIStreamsUsageChunkIsReadAndKeptFromAnAgentThatDidNotAskForIt(partSize: Int) throws {
        let stream = try Self.recorded(startingWith: "data: {\"id\":\"chatcmpl-")
        let (reader, forwarded) = Self.read(stream, format: .openAI, isResponses: false, partSize: partSize)
        #expect(reader.usage == TokenUsage(input: 8, cachedInput: 3, output: 7, reasoning: 2))
        let events = stream.split(separator: 0x0A, omittingEmptySubsequences: true).count
        #expect(forwarded == events - 1, "every event but the usage chunk the proxy asked for goes on")
        #expect(reader.outputCharacters > 0)
    }

    @Test(arguments: [1, 4096])
    func anAnthropicStreamsTwoUsageEventsAreMerged(partSize: Int) throws {
        let stream = try Self.recorded(startingWith: "event: message_start")
        let (reader, _) = Self.read(stream, format: .anthropic, isResponses: false, partSize: partSize)
        #expect(reader.usage == TokenUsage(input: 11, cachedInput: 4, cacheWrite: 5, output: 7))
    }

    @Test(arguments: [1, 4096])
    func aResponsesStreamsCompletedEventGivesItsUsageAndId(partSize: Int) throws {
        let stream = try Self.recorded(startingWith: "event: response.created")
        var events = SSEEvents()
        var reader = StreamUsageReader(format: .openAI, isResponses: true, clientWantsUsage: false)
        var ids: [String] = []
        for start in stride(from: 0, to: stream.count, by: partSize) {
            for event in events.feed(stream[start..<min(start + partSize, stream.count)]) {
                if let id = reader.read(event).responseID { ids.append(id) }
            }
        }
        #expect(reader.usage == TokenUsage(input: 8, cachedInput: 3, output: 7, reasoning: 2))
        #expect(ids.count == 1 && ids[0].hasPrefix("resp_"), "\(ids)")
    }

    @Test func aUsageWithANegativeOrAbsurdCountIsNotAReport() {
        for usage in [#"{"prompt_tokens":-5,"completion_tokens":3}"#, #"{"prompt_tokens":5,"completion_tokens":9000000000000}"#] {
            var reader = StreamUsageReader(format: .openAI, isResponses: false, clientWantsUsage: false)
            _ = reader.read(Array("data: {\"choices\":[],\"usage\":\(usage)}\n\n".utf8))
            #expect(reader.usage == nil, "\(usage)")
        }
    }
}
