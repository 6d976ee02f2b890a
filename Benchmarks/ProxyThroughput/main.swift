import ArgumentParser
import BenchmarkSupport
import Foundation
import Glibc

/// Measures the latency Keyhold's metering proxy adds over calling a provider directly, its throughput and memory,
/// and LiteLLM's proxy against the same fake provider. See `--help`.
let arguments = Array(CommandLine.arguments.dropFirst())

if arguments.first == "--litellm-child", arguments.count == 2 {
    // Inside `unshare --net`: the LiteLLM half, reported as one JSON line on stdout.
    guard let options = try? JSONDecoder().decode(Options.self, from: Data(arguments[1].utf8)) else { exit(2) }
    let outcome = await LiteLLMSide.child(options)
    let encoded = (try? JSONEncoder().encode(outcome)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    say(LiteLLMSide.resultPrefix + encoded)
    exit(0)
}

let options: Options
do {
    options = try Arguments.parseOrExit().options()
} catch {
    say(error.description)
    exit(2)
}
Machine.printHeader(options)
let bench = Bench(options: options)

// Ctrl-C or SIGTERM: the daemon goes too.
let signalSources = CleanupOnSignal.install(program: "keyhold-bench-proxy") { [bench] in bench.tearDown() }

do {
    try await bench.run()
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-proxy: \(error)\nlast lines of the daemon's log:\n\(bench.daemonLogTail)\n".utf8))
    bench.tearDown()
    exit(1)
}
bench.tearDown()
say("\ncleaned up: daemon stopped")
