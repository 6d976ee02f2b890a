import BenchmarkSupport
import Foundation
import Glibc

/// Runs a program with `posix_spawn` (less overhead than Foundation's `Process`) and collects its output.
enum Spawn {
    struct Result: Sendable {
        var status: Int32
        /// Standard output and standard error together.
        var output: String
    }

    /// Runs `argv` (argv[0] an absolute path) to completion, stdin from /dev/null.
    static func run(_ argv: [String]) throws(BenchError) -> Result {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw BenchError("pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = ProcessInfo.processInfo.environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (cArguments + cEnvironment).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, argv[0], &actions, nil, cArguments, cEnvironment)
        close(fds[1])
        defer { close(fds[0]) }
        guard spawned == 0 else { throw BenchError("cannot run \(argv[0]): \(String(cString: strerror(spawned)))") }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = read(fds[0], &buffer, buffer.count)
            if count > 0 {
                output += buffer[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = status & 0x7f == 0
        return Result(status: exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), output: String(decoding: output, as: UTF8.self))
    }

    /// `argv` run in the mount and pid namespaces of `systemdPID` (`nsenter -t PID -m -p`), or as is on the host.
    static func inNamespace(of systemdPID: Int32?, _ argv: [String]) -> [String] {
        guard let systemdPID else { return argv }
        return ["/usr/bin/nsenter", "-t", "\(systemdPID)", "-m", "-p"] + argv
    }
}
