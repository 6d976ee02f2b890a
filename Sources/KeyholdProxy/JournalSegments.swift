import Foundation
import Synchronization

/// The segment files of a journal directory (`segment-00000001.jsonl`), numbered in the order they are opened.
///
/// Numbers only grow, across the shards of one process and from one process to the next, so a segment numbered
/// below every shard's current one is closed: no shard will write to it again.
final class JournalSegments: Sendable {
    let directory: String
    /// The first number this process opened: segments below it were left by an earlier process.
    let firstOwn: Int
    private let last: Atomic<Int>

    init(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.directory = directory
        let highest = Self.names(in: directory).compactMap(Self.number(of:)).max() ?? 0
        firstOwn = highest + 1
        last = Atomic(highest)
    }

    /// Segment files, oldest first (by number: past 99,999,999 the names no longer sort as text).
    static func names(in directory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.compactMap { name in number(of: name).map { (name, $0) } }.sorted { $0.1 < $1.1 }.map(\.0)
    }

    static func name(_ number: Int) -> String { String(format: "segment-%08d.jsonl", number) }

    static func number(of name: String) -> Int? {
        guard name.hasPrefix("segment-") && name.hasSuffix(".jsonl") else { return nil }
        return Int(name.dropFirst(8).dropLast(6))
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Segments whose numbers are in `numbers`, oldest first.
    func names(numbered numbers: Range<Int>) -> [String] {
        Self.names(in: directory).filter { Self.number(of: $0).map(numbers.contains) ?? false }
    }

    /// Creates the next segment, open for appending.
    func openNext() throws(JournalError) -> (number: Int, descriptor: Int32) {
        let number = last.add(1, ordering: .relaxed).newValue
        let path = path(Self.name(number))
        let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw JournalError.cannotOpen(path: path, errno: errno) }
        return (number, descriptor)
    }
}

/// A journal segment could not be created.
enum JournalError: Error, CustomStringConvertible {
    case cannotOpen(path: String, errno: Int32)

    var description: String {
        switch self {
        case .cannotOpen(let path, let code):
            "cannot create the usage journal segment \(path): \(String(cString: strerror(code))); check that the state directory is writable"
        }
    }
}
