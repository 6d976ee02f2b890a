import BenchmarkSupport

/// The benchmark's command-line options.
struct Options: Sendable {
    /// Timed starts of each kind.
    var starts = 100
    /// Untimed starts of each kind before the timed ones.
    var warmup = 5
    /// Idle sandboxes started for the density figure (0 skips it).
    var density = 500
    /// Skip the `systemd-analyze security` scores.
    var skipSecurity = false
    /// Sizes of the concurrent-start rounds (an empty list skips them).
    var concurrent = [20, 100]
    /// Rounds of each concurrent size and kind.
    var concurrentRounds = 5

    static let usage = """
        usage: keyhold-bench-sandbox [--starts N] [--warmup N] [--density N] [--concurrent N,M] [--concurrent-rounds N] [--skip-security]
          --starts N       timed starts of each kind, alternating (default 100)
          --warmup N       untimed starts of each kind first (default 5)
          --density N      idle sandboxes started through the API, one tenant each (default 500; 0 skips)
          --concurrent N,M starts sent at once, through the API and as systemd-run, for each size (default 20,100; 0 skips)
          --concurrent-rounds N  rounds of each size and kind (default 5)
          --skip-security  do not print systemd-analyze security scores
        """

    /// Parses `arguments` (without the program name).
    static func parse(_ arguments: [String]) throws(BenchError) -> Options {
        var options = Options()
        var rest = arguments[...]
        let reader = OptionReader(usage: usage)
        while let flag = rest.popFirst() {
            switch flag {
            case "--starts": options.starts = try reader.number(after: flag, in: &rest, minimum: 1)
            case "--warmup": options.warmup = try reader.number(after: flag, in: &rest, minimum: 0)
            case "--density": options.density = try reader.number(after: flag, in: &rest, minimum: 0)
            case "--skip-security": options.skipSecurity = true
            case "--concurrent":
                guard let text = rest.popFirst() else { throw BenchError("--concurrent needs sizes, e.g. 20,100\n\(usage)") }
                let sizes = text.split(separator: ",").compactMap { Int($0) }
                guard sizes.count == text.split(separator: ",").count, sizes.allSatisfy({ $0 >= 0 }) else {
                    throw BenchError("--concurrent takes whole numbers separated by commas, e.g. 20,100")
                }
                options.concurrent = sizes.filter { $0 > 0 }
            case "--concurrent-rounds": options.concurrentRounds = try reader.number(after: flag, in: &rest, minimum: 1)
            case "-h", "--help": throw BenchError(usage)
            default: throw BenchError("unknown option \(flag)\n\(usage)")
            }
        }
        return options
    }
}
