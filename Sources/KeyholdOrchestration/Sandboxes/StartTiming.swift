import Foundation
import Logging

/// Opt-in timing of the steps of a sandbox start (`KEYHOLD_TIMING=1`), logged as one line per start for the benchmark
/// (Benchmarks/SandboxStart). Off by default: then `mark` and `log` do nothing.
struct StartTiming: Sendable {
    static let enabled = ProcessInfo.processInfo.environment["KEYHOLD_TIMING"] == "1"

    private let begin = ContinuousClock.now
    private var last = ContinuousClock.now
    private var steps: [(name: String, duration: Duration)] = []

    /// Records the time since the previous mark as step `name`, ending `now` (a step timed on another thread).
    mutating func mark(_ name: String, at now: ContinuousClock.Instant = .now) {
        guard Self.enabled else { return }
        steps.append((name, now - last))
        last = now
    }

    /// Logs `start timing UNIT: step=ms ... total=ms`.
    func log(unit: String, logger: Logger) {
        guard Self.enabled else { return }
        let fields = (steps + [("total", last - begin)]).map { "\($0.name)=\(String(format: "%.3f", Self.milliseconds($0.duration)))" }
        logger.notice("start timing \(unit): \(fields.joined(separator: " "))")
    }

    private static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }
}
