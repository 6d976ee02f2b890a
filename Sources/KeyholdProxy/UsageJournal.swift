import Foundation
import Synchronization

/// One line of the usage journal: a reservation made, or a request settled.
struct JournalEntry: Codable, Sendable {
    /// `r` (reserved) or `s` (settled).
    var kind: String
    var id: String
    var tenantID: Int64
    var sandboxID: Int64?
    var model: String
    var reservedTokens: Int
    var reservedPicoUSD: Int64
    var input = 0
    var cachedInput = 0
    var cacheWrite = 0
    var output = 0
    var reasoning = 0
    var picoUSD: Int64 = 0
    var status = 0
    /// `usage` (the provider's accounting) or `reservation` (usage never arrived).
    var charged = "usage"
    var latencyMs = 0.0
    var time: String
}

/// An append-only journal of reservations and settlements, written with one `write(2)` per event.
///
/// A process kill cannot lose what `write` returned, so settled usage and in-flight reservations survive a
/// SIGKILL of the proxy. The flusher moves closed segments into SQLite in batches; at start-up a reservation
/// without its settlement is charged in full.
final class UsageJournal: Sendable {
    let directory: String
    private struct State {
        var descriptor: Int32
        var segment: Int
        var inFlight: [String: JournalEntry]
    }
    private let state: Mutex<State>
    private static let encoder = JSONEncoder()

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.directory = directory
        let next = (Self.segments(in: directory).last.flatMap { Int($0.dropFirst(8).dropLast(6)) } ?? 0) + 1
        state = Mutex(State(descriptor: try Self.open(directory, next), segment: next, inFlight: [:]))
    }

    deinit { _ = state.withLock { close($0.descriptor) } }

    /// Segment files, oldest first (`segment-00000001.jsonl`).
    static func segments(in directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("segment-") && $0.hasSuffix(".jsonl") }
            .sorted()
    }

    static func name(_ segment: Int) -> String { String(format: "segment-%08d.jsonl", segment) }

    private static func open(_ directory: String, _ segment: Int) throws -> Int32 {
        let path = (directory as NSString).appendingPathComponent(name(segment))
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        return fd
    }

    func reserve(_ entry: JournalEntry) {
        state.withLock { state in
            state.inFlight[entry.id] = entry
            Self.append(entry, to: state.descriptor)
        }
    }

    func settle(_ entry: JournalEntry) {
        state.withLock { state in
            state.inFlight[entry.id] = nil
            Self.append(entry, to: state.descriptor)
        }
    }

    /// Starts a new segment (re-logging the reservations still in flight) and returns the closed ones' names.
    func rotate() throws -> [String] {
        try state.withLock { state in
            let next = state.segment + 1
            let descriptor = try Self.open(directory, next)
            for entry in state.inFlight.values { Self.append(entry, to: descriptor) }
            close(state.descriptor)
            state.descriptor = descriptor
            state.segment = next
        }
        let current = state.withLock { Self.name($0.segment) }
        return Self.segments(in: directory).filter { $0 != current }
    }

    private static func append(_ entry: JournalEntry, to descriptor: Int32) {
        guard var line = try? encoder.encode(entry) else { return }
        line.append(0x0A)
        line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }

    /// The entries of a segment file (a torn last line, from a crash mid-write, is skipped).
    static func read(_ path: String) -> [JournalEntry] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        let decoder = JSONDecoder()
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(JournalEntry.self, from: Data($0)) }
    }
}
