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
        /// The line being written, reused from one append to the next.
        var line: [UInt8] = []
        /// Bytes in the current segment.
        var bytes = 0
    }
    /// A segment past this size is closed at once, flush or not: the flusher reads a segment whole, and a flusher
    /// held back (a slow disk, a busy machine) must not find one of hundreds of megabytes.
    static let segmentLimit = 1 << 20
    private let state: Mutex<State>

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
            append(entry, to: &state)
        }
    }

    func settle(_ entry: JournalEntry) {
        state.withLock { state in
            state.inFlight[entry.id] = nil
            append(entry, to: &state)
        }
    }

    /// Starts a new segment (re-logging the reservations still in flight) and returns the closed ones' names.
    func rotate() throws -> [String] {
        try state.withLock { state in try startSegment(&state) }
        let current = state.withLock { Self.name($0.segment) }
        return Self.segments(in: directory).filter { $0 != current }
    }

    private func startSegment(_ state: inout State) throws {
        let next = state.segment + 1
        let descriptor = try Self.open(directory, next)
        close(state.descriptor)
        state.descriptor = descriptor
        state.segment = next
        state.bytes = 0
        for entry in state.inFlight.values { append(entry, to: &state, mayRotate: false) }
    }

    private func append(_ entry: JournalEntry, to state: inout State, mayRotate: Bool = true) {
        state.bytes += Self.append(entry, to: state.descriptor, buffer: &state.line)
        // When the new segment cannot be opened, appending to the current one goes on (nothing is lost).
        if mayRotate && state.bytes >= Self.segmentLimit { try? startSegment(&state) }
    }

    /// Appends one line with one write(2); returns its length.
    private static func append(_ entry: JournalEntry, to descriptor: Int32, buffer: inout [UInt8]) -> Int {
        buffer.removeAll(keepingCapacity: true)
        JournalLine.encode(entry, into: &buffer)
        return buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return offset }
                offset += written
            }
            return offset
        }
    }

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

/// The journal's line format: the entry's 17 fields, tab-separated, ending in a newline.
///
/// Text fields escape backslash, tab, newline and carriage return (`\\`, `\t`, `\n`, `\r`); an absent sandbox is
/// an empty field. A line with a wrong field count or a malformed number is rejected whole.
enum JournalLine {
    static let fieldCount = 17

    static func encode(_ entry: JournalEntry, into line: inout [UInt8]) {
        text(entry.kind, &line)
        text(entry.id, &line)
        integer(entry.tenantID, &line)
        line.append(0x09)
        if let sandbox = entry.sandboxID { integer(sandbox, &line) }
        line.append(0x09)
        text(entry.model, &line)
        for value in [
            Int64(entry.reservedTokens), entry.reservedPicoUSD, Int64(entry.input), Int64(entry.cachedInput), Int64(entry.cacheWrite),
            Int64(entry.output), Int64(entry.reasoning), entry.picoUSD, Int64(entry.status),
        ] {
            integer(value, &line)
            line.append(0x09)
        }
        text(entry.charged, &line)
        line.append(contentsOf: entry.latencyMs.description.utf8)
        line.append(0x09)
        escape(entry.time, &line)
        line.append(0x0A)
    }

    private static func text(_ value: String, _ line: inout [UInt8]) {
        escape(value, &line)
        line.append(0x09)
    }

    private static func escape(_ value: String, _ line: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case 0x5C: line.append(contentsOf: [0x5C, 0x5C])
            case 0x09: line.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x0A: line.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: line.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            default: line.append(byte)
            }
        }
    }

    private static func integer(_ value: Int64, _ line: inout [UInt8]) {
        if value < 0 { line.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var count = 0
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            line.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// The entry of one line (without its newline), or nil when the line is not a whole entry.
    static func decode(_ line: UnsafeBufferPointer<UInt8>) -> JournalEntry? {
        var fields: [UnsafeBufferPointer<UInt8>] = []
        fields.reserveCapacity(fieldCount)
        var start = 0
        for index in line.indices where line[index] == 0x09 {
            fields.append(UnsafeBufferPointer(rebasing: line[start..<index]))
            start = index + 1
        }
        fields.append(UnsafeBufferPointer(rebasing: line[start...]))
        guard fields.count == fieldCount, let kind = unescape(fields[0]), let id = unescape(fields[1]), let tenant = integer(fields[2]),
            let model = unescape(fields[4]), let charged = unescape(fields[14]), let time = unescape(fields[16]),
            let latency = Double(String(decoding: fields[15], as: UTF8.self))
        else { return nil }
        let sandbox: Int64?
        if fields[3].isEmpty {
            sandbox = nil
        } else {
            guard let value = integer(fields[3]) else { return nil }
            sandbox = value
        }
        var numbers: [Int64] = []
        numbers.reserveCapacity(9)
        for field in fields[5...13] {
            guard let value = integer(field) else { return nil }
            numbers.append(value)
        }
        guard numbers.allSatisfy({ $0 >= Int64(Int.min) && $0 <= Int64(Int.max) }) else { return nil }
        return JournalEntry(
            kind: kind, id: id, tenantID: tenant, sandboxID: sandbox, model: model, reservedTokens: Int(numbers[0]), reservedPicoUSD: numbers[1],
            input: Int(numbers[2]), cachedInput: Int(numbers[3]), cacheWrite: Int(numbers[4]), output: Int(numbers[5]), reasoning: Int(numbers[6]),
            picoUSD: numbers[7], status: Int(numbers[8]), charged: charged, latencyMs: latency, time: time
        )
    }

    private static func integer(_ field: UnsafeBufferPointer<UInt8>) -> Int64? {
        var digits = field[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            magnitude = magnitude * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    private static func unescape(_ field: UnsafeBufferPointer<UInt8>) -> String? {
        guard field.contains(0x5C) else { return String(validating: field, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(field.count)
        var escaped = false
        for byte in field {
            if escaped {
                switch byte {
                case 0x5C: bytes.append(0x5C)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                default: return nil
                }
                escaped = false
            } else if byte == 0x5C {
                escaped = true
            } else {
                bytes.append(byte)
            }
        }
        return escaped ? nil : String(validating: bytes, as: UTF8.self)
    }
}
