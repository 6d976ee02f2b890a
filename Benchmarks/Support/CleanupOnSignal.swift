import Dispatch
import Foundation
import Glibc

/// Ctrl-C or SIGTERM during a benchmark: what it started (daemon, units, private systemd) goes too.
public enum CleanupOnSignal {
    /// Ignores SIGINT and SIGTERM's default action and runs `cleanUp` on either, then exits with 128 + the signal.
    /// - Returns: the signal sources; keep them for as long as the benchmark runs.
    public static func install(program: String, cleanUp: @escaping @Sendable () -> Void) -> [any DispatchSourceSignal] {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        return [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                FileHandle.standardError.write(Data("\(program): signal \(number), cleaning up\n".utf8))
                cleanUp()
                exit(128 + number)
            }
            source.resume()
            return source
        }
    }
}
