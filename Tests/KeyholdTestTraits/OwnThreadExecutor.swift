import Foundation
import Synchronization

/// A task executor with a thread for every job that waits: a pool that grows whenever every thread is busy.
///
/// A test that waits for a process, a socket or a file without `await` holds the thread it runs on for as long as
/// it waits. On Swift concurrency's shared pool, which has one thread per core, two such tests on a 2-core machine
/// leave no thread for any other test's tasks. Here a job never waits for a thread: an idle one takes it, or a new
/// one starts. Threads stay for the process's life, idle between jobs; there are as many as jobs ever ran at once.
final class OwnThreadExecutor: TaskExecutor {
    static let shared = OwnThreadExecutor()

    /// As large as the main thread's, for the deep frames of debug builds.
    private static let stackSize = 8 << 20

    private struct Queue {
        var jobs: [UnownedJob] = []
        var next = 0
        var idleThreads = 0

        mutating func pop() -> UnownedJob? {
            guard next < jobs.count else { return nil }
            defer {
                next += 1
                if next == jobs.count { (jobs, next) = ([], 0) }
            }
            return jobs[next]
        }
    }

    private let queue = Mutex(Queue())
    /// Signalled once for each idle thread a new job wakes.
    private let wake = DispatchSemaphore(value: 0)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let wakesAnIdleThread = queue.withLock { queue in
            queue.jobs.append(job)
            guard queue.idleThreads > 0 else { return false }
            queue.idleThreads -= 1
            return true
        }
        if wakesAnIdleThread {
            wake.signal()
        } else {
            let thread = Thread { [self] in work() }
            thread.stackSize = Self.stackSize
            thread.start()
        }
    }

    /// Runs jobs while there are some, then waits to be woken. Every job enqueued either wakes an idle thread or
    /// starts a new one, and every thread looks at the queue after that: no job is left waiting.
    private func work() {
        let executor = asUnownedTaskExecutor()
        while true {
            let job = queue.withLock { queue in
                let job = queue.pop()
                if job == nil { queue.idleThreads += 1 }
                return job
            }
            if let job {
                job.runSynchronously(on: executor)
            } else {
                wake.wait()
            }
        }
    }
}
