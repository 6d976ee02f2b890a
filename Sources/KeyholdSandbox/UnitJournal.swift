import CSystemd
import Foundation
import Glibc

/// Reads a unit's log lines from the journal (sd-journal).
public enum UnitJournal {
    /// The last `limit` `MESSAGE`s logged by unit `unit` (`_SYSTEMD_UNIT=`), oldest first.
    ///
    /// - Parameters:
    ///   - journalDirectory: nil for the host's journal; a directory holding journal files (or machine-id
    ///     subdirectories of them); or an OS root such as `PrivateSystemd.rootDirectory` (`/proc/<pid>/root`),
    ///     recognised by its `var/log/journal` or `run/log/journal`, whose both journal locations are read.
    ///   - invocationID: when given, only lines of that run of the unit (`_SYSTEMD_INVOCATION_ID=`).
    public static func lines(
        unit: String, journalDirectory: String?, limit: Int, invocationID: String? = nil
    ) throws -> [String] {
        guard limit > 0 else { return [] }
        var journal: OpaquePointer? = nil  // sd_journal *, owned here, closed by the defer below
        let r: Int32
        if let journalDirectory {
            let isOSRoot = ["var/log/journal", "run/log/journal"].contains {
                FileManager.default.fileExists(atPath: (journalDirectory as NSString).appendingPathComponent($0))
            }
            r = sd_journal_open_directory(&journal, journalDirectory, isOSRoot ? Int32(SD_JOURNAL_OS_ROOT) : 0)
        } else {
            r = sd_journal_open(&journal, Int32(SD_JOURNAL_LOCAL_ONLY))
        }
        try check(r, "open the journal\(journalDirectory.map { " in \($0)" } ?? "")")
        guard let journal else { return [] }
        defer { sd_journal_close(journal) }

        try addMatch(journal, "_SYSTEMD_UNIT=\(unit)")
        if let invocationID { try addMatch(journal, "_SYSTEMD_INVOCATION_ID=\(invocationID)") }
        try check(sd_journal_seek_tail(journal), "seek to the end of the journal")

        var lines: [String] = []
        while lines.count < limit {
            let step = sd_journal_previous(journal)
            try check(step, "read the journal")
            if step == 0 { break }
            var data: UnsafeRawPointer? = nil  // borrowed from sd-journal until the next move
            var length = 0
            if sd_journal_get_data(journal, "MESSAGE", &data, &length) >= 0, let data {
                let field = UnsafeRawBufferPointer(start: data, count: length)
                lines.append(String(decoding: field.dropFirst("MESSAGE=".utf8.count), as: UTF8.self))
            }
        }
        return lines.reversed()
    }

    private static func addMatch(_ journal: OpaquePointer, _ match: String) throws {
        let r = match.withCString { sd_journal_add_match(journal, $0, 0) }
        try check(r, "filter the journal on \(match)")
    }

    private static func check(_ r: Int32, _ what: String) throws {
        if r < 0 {
            throw SystemdError(
                code: .callFailed,
                message: "Could not \(what): \(String(cString: strerror(-r))). Run as root or in group "
                    + "systemd-journal, and check that journald runs.",
                errno: -r)
        }
    }
}
