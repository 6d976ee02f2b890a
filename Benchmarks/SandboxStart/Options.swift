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

    static let usage = """
        usage: keyhold-bench-sandbox [--starts N] [--warmup N] [--density N] [--skip-security]
          --starts N       timed starts of each kind, alternating (default 100)
          --warmup N       untimed starts of each kind first (default 5)
          --density N      idle sandboxes started through the API, one tenant each (default 500; 0 skips)
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
            case "-h", "--help": throw BenchError(usage)
            default: throw BenchError("unknown option \(flag)\n\(usage)")
            }
        }
        return options
    }
}
