import ArgumentParser
import BenchmarkSupport
import Foundation
import Glibc

/// Measures how long Keyhold takes to start a sandbox compared with systemd alone, how many idle sandboxes a host
/// holds, and the units' `systemd-analyze security` scores. See `--help`.
let options = Options.parseOrExit()

Machine.printHeader(options)
let bench: Bench
do {
    bench = try Bench(options: options)
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-sandbox: \(error)\n".utf8))
    exit(1)
}

// Ctrl-C or SIGTERM: the daemon, the units and the private systemd go too.
let signalSources = CleanupOnSignal.install(program: "keyhold-bench-sandbox") { [bench] in bench.tearDown() }

do {
    try await bench.run()
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-sandbox: \(error)\nlast lines of the daemon's log:\n\(bench.daemonLogTail)\n".utf8))
    bench.tearDown()
    exit(1)
}
bench.tearDown()
print("\ncleaned up: daemon stopped, units stopped, private systemd stopped; the daemon's log is in \(Bench.keptLog)")
