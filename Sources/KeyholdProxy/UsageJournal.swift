import Foundation
import NIOCore

/// An append-only journal of reservations and settlements, one shard per event loop.
///
/// A process kill cannot lose what `write` returned, so settled usage and in-flight reservations survive a
/// SIGKILL of the proxy. The flusher moves closed segments into SQLite in batches; at start-up a reservation
/// without its settlement is charged in full.
final class UsageJournal: Sendable {
    let segments: JournalSegments
    let shards: [JournalShard]
    private let shardOfLoop: [ObjectIdentifier: Int]

    /// - Parameter eventLoops: the loops that serve requests; each gets a shard (calls from elsewhere use the first).
    init(directory: String, eventLoops: [any EventLoop]) throws {
        let segments = try JournalSegments(directory: directory)
        self.segments = segments
        shards = try (0..<max(eventLoops.count, 1)).map { _ in try JournalShard(segments: segments) }
        var shardOfLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in eventLoops.enumerated() { shardOfLoop[ObjectIdentifier(loop)] = index }
        self.shardOfLoop = shardOfLoop
    }

    var directory: String { segments.directory }

    /// The shard `eventLoop` appends to.
    func shard(for eventLoop: any EventLoop) -> JournalShard {
        shards[shardOfLoop[ObjectIdentifier(eventLoop)] ?? 0]
    }

    /// Closes every shard's segment and returns the names of all closed segments this process wrote, oldest first.
    func rotate() throws -> [String] {
        for shard in shards { try shard.rotate() }
        let oldestOpen = shards.map(\.segment).min() ?? .max
        return segments.names(numbered: segments.firstOwn..<oldestOpen)
    }

    /// The segments an earlier process left, oldest first.
    var leftBehind: [String] { segments.names(numbered: 0..<segments.firstOwn) }

    /// The entries of a segment file. A torn last line (a crash mid-write: no final newline) is skipped, and so is
    /// any line that does not decode whole. Lines of the earlier JSON format are still read.
    static func read(_ path: String) -> [JournalEntry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.withUnsafeBytes { raw -> [JournalEntry] in
            let bytes = raw.bindMemory(to: UInt8.self)
            var entries: [JournalEntry] = []
            var start = 0
            for index in bytes.indices where bytes[index] == 0x0A {
                let line = UnsafeBufferPointer(rebasing: bytes[start..<index])
                start = index + 1
                if line.first == UInt8(ascii: "{") {
                    if let entry = try? JSONDecoder().decode(JournalEntry.self, from: Data(line)) { entries.append(entry) }
                } else if let entry = JournalLine.decode(line) {
                    entries.append(entry)
                }
            }
            return entries
        }
    }
}
