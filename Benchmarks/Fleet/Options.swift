import ArgumentParser
import BenchmarkSupport

/// The fleet benchmark's command-line options.
struct Options: ParsableCommand, Sendable {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-fleet", abstract: "A fleet of three hosts: placement, start rate and failover.")

    @Option(help: "Tenants placed and started over three hosts on PostgreSQL.")
    var tenants = 1500
    @Option(help: "Tenants started on one host on SQLite, for comparison (0 skips).")
    var single = 300
    @Option(help: "Tenants on the host that is killed (0 skips).")
    var failover = 200
    @Option(help: ArgumentHelp("The hosts' --lease-seconds.", valueName: "seconds"))
    var lease = 10
    @Option(help: "Start requests in flight at once.")
    var concurrency = 16

    func validate() throws {
        try require(tenants, atLeast: 1, for: "--tenants")
        try require(single, atLeast: 0, for: "--single")
        try require(failover, atLeast: 0, for: "--failover")
        try require(lease, atLeast: 1, for: "--lease")
        try require(concurrency, atLeast: 1, for: "--concurrency")
    }
}
