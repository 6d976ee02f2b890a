import Foundation
import Synchronization

/// The part of the usage journal one event loop appends to, with one `write(2)` per event.
///
/// Each loop has its own shard and segment file, so appends from different loops never wait on each other (nor on
/// the kernel's lock of a shared file); the lock here is taken by its loop and, five times a second, by the flusher
/// closing the segment.
final class JournalShard: Sendable {
    private struct State {
        var descriptor: Int32
        var segment: Int
        var inFlight: [String: JournalEntry] = [:]
        /// The bytes being written, reused from one append to the next.
        var line: [UInt8] = []
        /// Bytes in the current segment.
        var bytes = 0
        /// A write stopped mid-line: the next one starts with a line break, so that only the torn line is lost.
        var torn = false
    }
    private let state: Mutex<State>
    private let segments: JournalSegments
    /// A segment past this size is closed at once, flush or not: the flusher reads a segment whole, and a flusher
    /// held back (a slow disk, a busy machine) must not find one of hundreds of megabytes.
    static let segmentLimit = 1 << 20

    init(segments: JournalSegments) throws(JournalError) {
        self.segments = segments
        let (number, descriptor) = try segments.openNext()
        state = Mutex(State(descriptor: descriptor, segment: number))
    }

    deinit { _ = state.withLock { close($0.descriptor) } }

    /// The segment appends go to now.
    var segment: Int { state.withLock { $0.segment } }

    /// Journals a reservation before its request is sent.
    /// - Returns: false when the disk refused it: the request must not be sent (it could not be metered).
    func reserve(_ entry: JournalEntry) -> Bool {
        state.withLock { state in
            guard Self.append(CollectionOfOne(entry), to: &state) else { return false }
            state.inFlight[entry.id] = entry
            closeIfFull(&state)
            return true
        }
    }

    /// Journals a settlement.
    /// - Returns: false when the disk refused it (the reservation then stands, and is charged whole).
    func settle(_ entry: JournalEntry) -> Bool {
        state.withLock { state in
            state.inFlight[entry.id] = nil
            let written = Self.append(CollectionOfOne(entry), to: &state)
            closeIfFull(&state)
            return written
        }
    }

    /// Closes the current segment: appends go to a new one, which starts with the reservations still in flight.
    /// The new file is created before the lock is taken, so the loop waits for one `write(2)` at most.
    func rotate() throws(JournalError) {
        let next = try segments.openNext()
        let closed = state.withLock { state in Self.switchSegment(&state, to: next) }
        close(closed)
    }

    /// Past the size limit, appends move to a new segment (when it cannot be created, the current one goes on).
    private func closeIfFull(_ state: inout State) {
        guard state.bytes >= Self.segmentLimit, let next = try? segments.openNext() else { return }
        close(Self.switchSegment(&state, to: next))
    }

    /// Makes `next` the current segment and re-logs the reservations in flight there; returns the old descriptor.
    private static func switchSegment(_ state: inout State, to next: (number: Int, descriptor: Int32)) -> Int32 {
        let old = state.descriptor
        state.descriptor = next.descriptor
        state.segment = next.number
        state.bytes = 0
        state.torn = false
        _ = append(state.inFlight.values, to: &state)
        return old
    }

    /// Appends the entries' lines with one `write(2)`. When the disk refuses, appending goes on in later calls
    /// (nothing already written is lost); a kill cannot lose what `write` returned.
    /// - Returns: whether every byte was written.
    private static func append(_ entries: some Sequence<JournalEntry>, to state: inout State) -> Bool {
        state.line.removeAll(keepingCapacity: true)
        if state.torn { state.line.append(0x0A) }
        for entry in entries { JournalLine.encode(entry, into: &state.line) }
        let descriptor = state.descriptor
        let written = state.line.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return offset }
                offset += written
            }
            return offset
        }
        state.bytes += written
        let complete = written == state.line.count
        if written > 0 { state.torn = !complete }
        return complete
    }
}

/// A request's reservation in the journal: its id and the shard of the event loop it was made on, where its
/// settlement goes too.
struct Journaled: Sendable {
    var id: String
    var shard: JournalShard
}
