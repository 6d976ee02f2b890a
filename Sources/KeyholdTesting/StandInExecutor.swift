import Dispatch

/// Where the in-process stand-in servers (the fake provider, webhook receivers) run their tasks: a thread of their
/// own, outside Swift's shared pool. A test that blocks a pool thread while the daemon waits on a stand-in (a CLI call
/// whose daemon validates a key with the fake provider) must not leave the stand-in without a thread to answer on:
/// with two cores the pool has two threads, and two such tests at once would wait on each other until they time out.
public final class StandInExecutor: TaskExecutor, @unchecked Sendable {
    public static let shared = StandInExecutor()

    /// A serial queue: libdispatch gives it a thread of its own (an overcommit one), whatever the pool is doing.
    private let queue = DispatchQueue(label: "keyhold.stand-in-servers")

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
