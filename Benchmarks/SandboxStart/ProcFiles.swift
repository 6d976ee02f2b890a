import Foundation
import Glibc

/// Small reads of /proc files.
enum ProcFiles {
    /// The contents of a small file, read with plain syscalls (no Foundation on the timed path); nil if unreadable.
    static func read(_ path: String, capacity: Int = 256) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: capacity)
        var filled = 0
        while filled < capacity {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, capacity - filled) }
            if count == 0 { break }
            if count < 0 { return nil }
            filled += count
        }
        return String(decoding: buffer[0..<filled], as: UTF8.self)
    }

    /// The direct children of `pid`.
    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task in
            (read("/proc/\(pid)/task/\(task)/children", capacity: 1 << 20) ?? "").split(separator: " ").compactMap { Int32($0) }
        }
    }

    /// `comm` of `pid` without the newline.
    static func command(of pid: Int32, root: String = "") -> String? {
        read("\(root)/proc/\(pid)/comm").map { $0.trimmingCharacters(in: .newlines) }
    }
}
