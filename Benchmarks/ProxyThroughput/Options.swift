import ArgumentParser
import BenchmarkSupport
import Foundation

/// The benchmark's command-line options.
struct Options: Sendable, Codable {
    /// Timed requests of each kind, one client at a time (each to the fake and through the proxy, interleaved).
    var requests = 2000
    /// Untimed requests first (per connection for the concurrent runs).
    var warmup = 200
    /// Concurrent connections.
    var connections = 64
    /// Requests of each kind at `connections` connections, to each target.
    var concurrentRequests = 20_000
    /// The paced run: requests a second in all over `connections` connections, and how long.
    var pacedRate = 2000
    var pacedSeconds = 5
    /// The sustained run whose memory is sampled.
    var sustainSeconds = 60
    /// The run with the database unwritable.
    var unwritableSeconds = 30
    /// Timed requests of each kind through LiteLLM, one client at a time.
    var litellmRequests = 500
    /// Requests of each kind through LiteLLM at `connections` connections.
    var litellmConcurrentRequests = 2000
    var skipLiteLLM = false
    /// CPUs for `keyhold serve`, and for this process (load generator and fake provider); both or neither.
    var pinDaemon: [Int32]?
    var pinLoad: [Int32]?
    /// Where the throwaway virtual environment and LiteLLM's files go.
    var scratch = (NSTemporaryDirectory() as NSString).appendingPathComponent("keyhold-bench-proxy")
    /// The LiteLLM virtual environment (default: under `scratch`).
    var litellmVenv: String?

    /// The exact LiteLLM release installed (1.82.7, 1.82.8 and 1.107.0 were reported compromised).
    static let litellmVersion = "1.106.2"
    static let compromisedLiteLLM: Set<String> = ["1.82.7", "1.82.8", "1.107.0"]

    var venv: String { litellmVenv ?? (scratch as NSString).appendingPathComponent("litellm-\(Self.litellmVersion)-venv") }
}

/// The command line, read into `Options` (which also travels as JSON to the LiteLLM child).
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-proxy", abstract: "The metering proxy's latency, throughput and memory, and LiteLLM's.")

    @Option(help: "Timed requests of each kind at one client, to the fake and through Keyhold.")
    var requests = Options().requests
    @Option(help: "Untimed requests first (per connection when concurrent).")
    var warmup = Options().warmup
    @Option(help: "Concurrent connections.")
    var connections = Options().connections
    @Option(help: "Requests of each kind at N connections, per target.")
    var concurrentRequests = Options().concurrentRequests
    @Option(help: "Requests/s in all for the paced run at N connections (the issue's throughput target).")
    var pacedRate = Options().pacedRate
    @Option(help: "Length of each paced run, in seconds.")
    var pacedSeconds = Options().pacedSeconds
    @Option(help: "Sustained run with memory sampled every 5 s, in seconds (the issue asks for 600).")
    var sustainSeconds = Options().sustainSeconds
    @Option(help: "Run with the database unwritable, in seconds.")
    var unwritableSeconds = Options().unwritableSeconds
    @Option(help: "Timed requests of each kind at one client through LiteLLM.")
    var litellmRequests = Options().litellmRequests
    @Option(help: "Requests of each kind at N connections through LiteLLM.")
    var litellmConcurrentRequests = Options().litellmConcurrentRequests
    @Flag(name: .customLong("skip-litellm"), help: "Do not install or run LiteLLM.")
    var skipLiteLLM = Options().skipLiteLLM
    @Option(help: ArgumentHelp("Run keyhold serve on these CPUs (a taskset -c list: 1, 0-1, 2,3); give --pin-load too.", valueName: "cpus"))
    var pinDaemon: String?
    @Option(help: ArgumentHelp("Run the load generator and fake provider on these CPUs; LiteLLM's side is not pinned.", valueName: "cpus"))
    var pinLoad: String?
    @Option(help: ArgumentHelp("Scratch directory (default $TMPDIR/keyhold-bench-proxy).", valueName: "dir"))
    var scratch: String?
    @Option(
        name: .customLong("litellm-venv"),
        help: ArgumentHelp("LiteLLM's throwaway virtual environment (default SCRATCH/litellm-\(Options.litellmVersion)-venv).", valueName: "dir"))
    var litellmVenv: String?

    func validate() throws {
        for (value, minimum, name) in [
            (requests, 1, "--requests"), (warmup, 0, "--warmup"), (connections, 1, "--connections"),
            (concurrentRequests, 1, "--concurrent-requests"), (pacedRate, 1, "--paced-rate"), (pacedSeconds, 1, "--paced-seconds"),
            (sustainSeconds, 5, "--sustain-seconds"), (unwritableSeconds, 1, "--unwritable-seconds"),
            (litellmRequests, 1, "--litellm-requests"), (litellmConcurrentRequests, 1, "--litellm-concurrent-requests"),
        ] {
            try require(value, atLeast: minimum, for: name)
        }
        guard (pinDaemon == nil) == (pinLoad == nil) else { throw ValidationError("give --pin-daemon and --pin-load together") }
    }

    /// The options the benchmark runs with.
    func options() throws(BenchError) -> Options {
        var options = Options()
        (options.requests, options.warmup, options.connections, options.concurrentRequests) = (requests, warmup, connections, concurrentRequests)
        (options.pacedRate, options.pacedSeconds, options.sustainSeconds) = (pacedRate, pacedSeconds, sustainSeconds)
        (options.unwritableSeconds, options.litellmRequests, options.litellmConcurrentRequests) =
            (unwritableSeconds, litellmRequests, litellmConcurrentRequests)
        options.skipLiteLLM = skipLiteLLM
        options.pinDaemon = try pinDaemon.map { text throws(BenchError) in try Pinning.cpus(text, flag: "--pin-daemon") }
        options.pinLoad = try pinLoad.map { text throws(BenchError) in try Pinning.cpus(text, flag: "--pin-load") }
        if let scratch { options.scratch = scratch }
        options.litellmVenv = litellmVenv
        return options
    }
}
