import NIOCore
import Synchronization

/// Sends requests on one connection from the connection's event loop: the next request goes out from the previous
/// answer's callback (closed loop) or from a task scheduled on the loop at its slot (paced). No Swift task waits on
/// an answer, so the load generator's own scheduling stays out of the latencies and off the CPU the servers need.
final class LoopDriver {
    /// When the next request goes out.
    enum Pace {
        /// As soon as the previous answer ends, while `issued` stays within `count` and before `deadline`.
        case closed(issued: Counter, count: Int?, deadline: ContinuousClock.Instant?)
        /// At `first`, then every `interval`, until `end`.
        case paced(first: ContinuousClock.Instant, interval: Duration, end: ContinuousClock.Instant)
    }

    private let connection: Connection
    private let pace: Pace
    private let done: EventLoopPromise<LoadResult>
    private var result = LoadResult()
    private var slot: ContinuousClock.Instant?

    private init(connection: Connection, pace: Pace) {
        self.connection = connection
        self.pace = pace
        done = connection.channel.eventLoop.makePromise()
        if case .paced(let first, _, _) = pace { slot = first }
    }

    /// Drives `connection` until its pace says stop; the result holds every answer's latency.
    static func run(_ connection: Connection, pace: Pace) -> EventLoopFuture<LoadResult> {
        connection.channel.eventLoop.flatSubmit {
            let driver = LoopDriver(connection: connection, pace: pace)
            driver.next()
            return driver.done.futureResult
        }
    }

    private var loop: NIOIsolatedEventLoop { connection.channel.eventLoop.assumeIsolated() }

    private func next() {
        let now = ContinuousClock.now
        switch pace {
        case .closed(let issued, let count, let deadline):
            if let count, issued.value.add(1, ordering: .relaxed).newValue > count { return done.succeed(result) }
            if let deadline, now >= deadline { return done.succeed(result) }
            send(from: nil)
        case .paced(_, let interval, let end):
            guard let scheduled = slot, scheduled < end else { return done.succeed(result) }
            slot = scheduled + interval
            if now >= scheduled {
                // Late (the previous answer took past this slot): timed from the slot, so a slow answer counts
                // against the requests it delayed too (no coordinated omission).
                send(from: scheduled)
            } else {
                loop.scheduleTask(in: .nanoseconds(Int64((scheduled - now) / .nanoseconds(1)))) { self.send(from: nil) }
            }
        }
    }

    /// One request, timed from `from` or (on time) from when it was written.
    private func send(from: ContinuousClock.Instant?) {
        let promise = connection.channel.eventLoop.makePromise(of: Reply.self)
        connection.channel.writeAndFlush(Job(head: connection.head, body: connection.body, promise: promise), promise: nil)
        promise.futureResult.assumeIsolated().whenComplete { outcome in
            switch outcome {
            case .success(let reply):
                self.result.record(reply, from: from)
                self.next()
            case .failure(let error):
                // A broken connection ends this driver; the others go on.
                self.result.record(failure: error)
                self.done.succeed(self.result)
            }
        }
    }
}
