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

    static let usage = """
        usage: keyhold-bench-proxy [options]
          --requests N                    timed requests of each kind at one client, to the fake and through Keyhold (default 2000)
          --warmup N                      untimed requests first (per connection when concurrent; default 200)
          --connections N                 concurrent connections (default 64)
          --concurrent-requests N         requests of each kind at N connections, per target (default 20000)
          --paced-rate N                  requests/s in all for the paced run at N connections (default 2000, the issue's throughput target)
          --paced-seconds N               length of each paced run (default 5)
          --sustain-seconds N             sustained run with memory sampled every 5 s (default 60; the issue asks for 600)
          --unwritable-seconds N          run with the database unwritable (default 30)
          --litellm-requests N            timed requests of each kind at one client through LiteLLM (default 500)
          --litellm-concurrent-requests N requests of each kind at N connections through LiteLLM (default 2000)
          --skip-litellm                  do not install or run LiteLLM
          --pin-daemon CPUS --pin-load CPUS
                                          run keyhold serve on CPUS and the load generator and fake provider on others
                                          (taskset -c lists: 1, 0-1, 2,3); LiteLLM's side is not pinned
          --scratch DIR                   scratch directory (default $TMPDIR/keyhold-bench-proxy)
          --litellm-venv DIR              LiteLLM's throwaway virtual environment (default SCRATCH/litellm-\(litellmVersion)-venv)
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(BenchError) -> Options {
        var options = Options()
        var rest = arguments[...]
        let reader = OptionReader(usage: usage)
        while let flag = rest.popFirst() {
            switch flag {
            case "--requests": options.requests = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--warmup": options.warmup = try reader.number(after: flag, in: &rest, minimum: 0)
            case "--connections": options.connections = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--concurrent-requests": options.concurrentRequests = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--paced-rate": options.pacedRate = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--paced-seconds": options.pacedSeconds = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--sustain-seconds": options.sustainSeconds = try reader.number(after: flag, in: &rest, minimum: 5)
            case "--unwritable-seconds": options.unwritableSeconds = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--litellm-requests": options.litellmRequests = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--litellm-concurrent-requests": options.litellmConcurrentRequests = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--skip-litellm": options.skipLiteLLM = true
            case "--pin-daemon": options.pinDaemon = try Pinning.cpus(try reader.text(after: flag, in: &rest), flag: flag)
            case "--pin-load": options.pinLoad = try Pinning.cpus(try reader.text(after: flag, in: &rest), flag: flag)
            case "--scratch": options.scratch = try reader.text(after: flag, in: &rest)
            case "--litellm-venv": options.litellmVenv = try reader.text(after: flag, in: &rest)
            case "-h", "--help": throw BenchError(usage)
            default: throw BenchError("unknown option \(flag)\n\(usage)")
            }
        }
        guard (options.pinDaemon == nil) == (options.pinLoad == nil) else { throw BenchError("give --pin-daemon and --pin-load together") }
        return options
    }
}
