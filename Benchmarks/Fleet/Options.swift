import BenchmarkSupport

/// The fleet benchmark's command-line options.
struct Options: Sendable {
    /// Tenants placed and started over the three hosts.
    var tenants = 1500
    /// Tenants started on one host on SQLite, for comparison.
    var single = 300
    /// Tenants on the host that is killed.
    var failover = 200
    /// The hosts' lease, in seconds.
    var lease = 10
    /// Start requests in flight at once.
    var concurrency = 16

    static let usage = """
        usage: keyhold-bench-fleet [--tenants N] [--single N] [--failover N] [--lease S] [--concurrency N]
          --tenants N      tenants placed and started over three hosts on PostgreSQL (default 1500)
          --single N       tenants started on one host on SQLite, for comparison (default 300; 0 skips)
          --failover N     tenants on the host that is killed (default 200; 0 skips)
          --lease S        the hosts' --lease-seconds (default 10)
          --concurrency N  start requests in flight at once (default 16)
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(BenchError) -> Options {
        var options = Options()
        var rest = arguments[...]
        let reader = OptionReader(usage: usage)
        while let flag = rest.popFirst() {
            switch flag {
            case "--tenants": options.tenants = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--single": options.single = try reader.number(after: flag, in: &rest, minimum: 0)
            case "--failover": options.failover = try reader.number(after: flag, in: &rest, minimum: 0)
            case "--lease": options.lease = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--concurrency": options.concurrency = try reader.number(after: flag, in: &rest, minimum: 1)
            case "-h", "--help": throw BenchError(usage)
            default: throw BenchError("unknown option \(flag)\n\(usage)")
            }
        }
        return options
    }
}
