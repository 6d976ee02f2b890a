import Foundation
import Synchronization

/// Writes to the usage journal that the disk refused: counted, and reported in the log at most once every ten
/// seconds (a full disk refuses every request; one line per burst says so, with how many).
final class JournalFailures: Sendable {
    private struct State {
        var total = 0
        var unreported = 0
        var lastReport: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    static let reportInterval: Duration = .seconds(10)

    /// Every refused write since the daemon started.
    var total: Int { state.withLock { $0.total } }

    /// Counts a refused write of `what` (`errorNumber` as `write` left it).
    /// - Returns: the line to log, when no report was made in the last ten seconds.
    func record(_ what: String, errorNumber: Int32, now: ContinuousClock.Instant = .now) -> String? {
        state.withLock { state in
            state.total += 1
            state.unreported += 1
            if let last = state.lastReport, now - last < Self.reportInterval { return nil }
            let report =
                "usage journal: the disk refused \(what) (\(String(cString: strerror(errorNumber)))); \(state.unreported) write(s) refused since the last report, \(state.total) in all: requests are refused, never sent unmetered, until the journal's disk accepts writes"
            state.lastReport = now
            state.unreported = 0
            return report
        }
    }
}
