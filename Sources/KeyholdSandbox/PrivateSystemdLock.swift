import Foundation
import Glibc

/// One private systemd per machine: two share the host's cgroup tree and break each other, so booting
/// takes an exclusive lock on `/run/lock/keyhold-private-systemd.lock`, held until the instance stops
/// (or this process dies, which also kills the instance).
final class PrivateSystemdLock: @unchecked Sendable {
    static let path = "/run/lock/keyhold-private-systemd.lock"

    /// Owned here; closing it releases the lock.
    private var descriptor: Int32

    /// Waits (polling, until `deadline`) for the lock.
    /// - Throws: `SystemdError.bootFailed` naming the holder when the deadline passes.
    init(deadline: ContinuousClock.Instant) throws {
        try? FileManager.default.createDirectory(atPath: "/run/lock", withIntermediateDirectories: true)
        descriptor = open(Self.path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw SystemdError(code: .bootFailed, message: "cannot open \(Self.path): \(String(cString: strerror(errno)))")
        }
        while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR, ContinuousClock.now < deadline else {
                let holder = (try? String(contentsOfFile: Self.path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
                close(descriptor)
                throw SystemdError(
                    code: .bootFailed,
                    message:
                        "another private systemd is running on this machine (booted by pid \(holder)); only one can run at a time: stop it, or wait"
                )
            }
            usleep(50_000)  // poll interval; the deadline bounds the wait
        }
        let owner = "\(getpid())\n"
        ftruncate(descriptor, 0)
        _ = owner.withCString { write(descriptor, $0, strlen($0)) }
    }

    func release() {
        guard descriptor >= 0 else { return }
        close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
