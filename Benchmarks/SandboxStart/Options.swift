import ArgumentParser
import BenchmarkSupport

/// The benchmark's command-line options.
struct Options: ParsableCommand, Sendable {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-sandbox", abstract: "Sandbox start against systemd alone, density and security scores.")

    @Option(help: "Timed starts of each kind, alternating.")
    var starts = 100
    @Option(help: "Untimed starts of each kind first.")
    var warmup = 5
    @Option(help: "Idle sandboxes started through the API, one tenant each (0 skips).")
    var density = 500
    @Flag(help: "Do not print systemd-analyze security scores.")
    var skipSecurity = false
    @Option(
        name: .customLong("concurrent"),
        help: ArgumentHelp("Starts sent at once, through the API and as systemd-run, for each size (0 skips).", valueName: "N,M"))
    var concurrentSizes = "20,100"
    @Option(help: "Rounds of each concurrent size and kind.")
    var concurrentRounds = 5

    /// The concurrent-start round sizes (an empty list skips them).
    var concurrent: [Int] { concurrentSizes.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 } }

    func validate() throws {
        try require(starts, atLeast: 1, for: "--starts")
        try require(warmup, atLeast: 0, for: "--warmup")
        try require(density, atLeast: 0, for: "--density")
        try require(concurrentRounds, atLeast: 1, for: "--concurrent-rounds")
        let parts = concurrentSizes.split(separator: ",")
        guard !parts.isEmpty, parts.allSatisfy({ Int($0).map { $0 >= 0 } ?? false }) else {
            throw ValidationError("--concurrent takes whole numbers separated by commas, e.g. 20,100")
        }
    }
}
