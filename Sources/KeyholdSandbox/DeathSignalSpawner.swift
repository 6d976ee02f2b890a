import Foundation
import Synchronization

/// Starts a `Process` from a thread of its own that stays alive until `release()` (internal).
///
/// Linux sends `PR_SET_PDEATHSIG` signals when the *thread* that forked the child exits, not the process; a
/// child spawned from a pool thread could be killed when that idle thread is retired. Spawning from this
/// parked thread means `setpriv --pdeathsig KILL` fires only when this process dies (or after `release()`).
final class DeathSignalSpawner: Sendable {
    private let started = DispatchSemaphore(value: 0)
    private let parked = DispatchSemaphore(value: 0)
    private let launchError = Mutex<(any Error)?>(nil)
    private let released = Atomic<Bool>(false)

    /// Runs `process.run()` on a new thread and waits until it returned.
    func run(_ process: Process) throws {
        let box = ProcessBox(process)
        let thread = Thread { [self] in
            do {
                try box.process.run()
            } catch {
                launchError.withLock { $0 = error }
                started.signal()
                return  // nothing was spawned: no need to stay alive
            }
            started.signal()
            parked.wait()  // keep the forking thread alive while the child runs
        }
        thread.name = "keyhold-private-systemd"
        thread.start()
        started.wait()
        if let error = launchError.withLock({ $0 }) { throw error }
    }

    /// Lets the thread exit (call once the child is dead).
    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { parked.signal() }
    }
}

/// Carries a `Process` to the spawning thread.
private final class ProcessBox: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}
