import Glibc
import NIOPosix

/// Runs the usage flusher's file reading, decoding and SQLite writes on a thread of its own, off Swift's
/// cooperative pool and at a lower scheduling priority (nice 10): a flush is a burst of CPU every 200 ms, and on
/// a machine with few cores the proxy's event loops must not wait behind it (it showed in the proxy's p99).
enum OffPool {
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()
    /// Niceness of the flusher's thread (the event loops run at the process's own, 0 by default).
    static let niceness: Int32 = 10

    static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive {
            // On Linux the niceness is per thread, and `who` 0 is the calling thread: this one alone.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness)
            return try body()
        }
    }
}
