import NIOPosix
import Synchronization

/// Threads for the gateway's blocking name lookups (getaddrinfo(3) cannot be cancelled or made asynchronous), shared
/// fairly between sandboxes: one sandbox holds at most `threadsPerSandbox` of them at once, and a free thread goes
/// to the next sandbox in turn that has a lookup waiting. A sandbox whose names answer slowly (or never) then waits
/// behind its own lookups, while every other sandbox's lookups keep their latency.
final class FairLookupPool: Sendable {
    /// Threads in the pool.
    static let threadCount = 16
    /// The most threads one sandbox's lookups may hold at once.
    static let threadsPerSandbox = 2

    typealias Owner = ObjectIdentifier
    typealias Job = @Sendable () -> Void

    private let threads: NIOThreadPool
    /// Whether the threads were started: at the first lookup, so that a gateway that never resolves holds none.
    private let started = Mutex(false)
    private let state = Mutex(Turns())

    init() {
        threads = NIOThreadPool(numberOfThreads: Self.threadCount)
    }

    deinit {
        if started.withLock({ $0 }) { threads.shutdownGracefully { _ in } }
    }

    /// Runs `work` on a pool thread when it is `owner`'s turn, and returns its result.
    func run<Value: Sendable>(for owner: Owner, _ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let job: Job = { continuation.resume(with: Result { try work() }) }
            let ready = state.withLock { turns in
                turns.waiting[owner, default: []].append(job)
                if !turns.queue.contains(owner) { turns.queue.append(owner) }
                return turns.next()
            }
            start(ready)
        }
    }

    private func start(_ ready: [(Owner, Job)]) {
        if !ready.isEmpty {
            started.withLock { started in
                if !started { threads.start() }
                started = true
            }
        }
        for (owner, job) in ready {
            threads.submit { [self] _ in
                job()
                start(
                    state.withLock { turns in
                        turns.finished(owner)
                        return turns.next()
                    })
            }
        }
    }

    /// Who waits, who runs, and whose turn is next.
    struct Turns {
        var waiting: [Owner: [Job]] = [:]
        /// Owners with lookups waiting, in the order they get a free thread.
        var queue: [Owner] = []
        var running: [Owner: Int] = [:]
        var busy = 0

        /// The jobs to start now: while a thread is free, the first waiting owner below its share gets it, and goes
        /// to the back of the queue.
        mutating func next() -> [(Owner, Job)] {
            var ready: [(Owner, Job)] = []
            while busy < FairLookupPool.threadCount,
                let position = queue.firstIndex(where: { running[$0, default: 0] < FairLookupPool.threadsPerSandbox })
            {
                let owner = queue.remove(at: position)
                let job = waiting[owner]!.removeFirst()
                if waiting[owner]!.isEmpty { waiting[owner] = nil } else { queue.append(owner) }
                running[owner, default: 0] += 1
                busy += 1
                ready.append((owner, job))
            }
            return ready
        }

        mutating func finished(_ owner: Owner) {
            busy -= 1
            running[owner]! -= 1
            if running[owner] == 0 { running[owner] = nil }
        }
    }
}
