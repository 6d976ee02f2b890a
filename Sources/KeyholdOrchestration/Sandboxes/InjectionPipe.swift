import CCloexecPipe
import Foundation
import KeyholdCore

/// The pipe a key travels through into a sandbox: its read end becomes the unit's stdin.
///
/// Both ends are close-on-exec so no other child inherits them. The read end is closed by the
/// daemon once systemd has its duplicate; the write end once the payload is written (or never
/// written, when the injection is refused, so `keyhold-exec` reads EOF and exits without a key). One start uses it,
/// step after step (possibly from the thread that waits on systemd), never concurrently.
final class InjectionPipe: @unchecked Sendable {
    private(set) var readEnd: Int32
    private(set) var writeEnd: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        // Close-on-exec from the start (pipe2, not pipe then fcntl): a process another thread spawns in between would
        // inherit the write end and hold the launcher's read open, without end, for its whole life.
        guard keyhold_cloexec_pipe(&fds) == 0 else {
            throw KeyholdError.unavailable("cannot create the injection pipe: \(String(cString: strerror(errno)))")
        }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let written = write(writeEnd, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                throw KeyholdError.failed(
                    "the sandbox closed its stdin before reading its keys (\(String(cString: strerror(errno)))): see `keyhold sandbox logs`")
            }
            offset += written
        }
    }

    func closeReadEnd() {
        if readEnd >= 0 { close(readEnd) }
        readEnd = -1
    }

    func closeWriteEnd() {
        if writeEnd >= 0 { close(writeEnd) }
        writeEnd = -1
    }

    deinit {
        closeReadEnd()
        closeWriteEnd()
    }
}
