import Foundation

/// The daemon's opt-in per-step timing (`KEYHOLD_TIMING=1`, lines `start timing UNIT: step=ms ... total=ms`), summarised.
struct StepBreakdown {
    /// Steps in the order the daemon logs them, with their samples.
    private(set) var steps: [Series] = []
    /// API call time minus the daemon's `startLocked` total, per start: HTTP, auth, routing, lock, JSON, client.
    private(set) var outside = Series(name: "outside startLocked (HTTP, auth, lock, JSON)")

    /// Reads the lines of `units` (timed starts, with their API call durations) from the daemon's log.
    init(log: String, apiTimes: [String: Duration]) {
        for line in log.split(separator: "\n") {
            guard let range = line.range(of: "start timing ") else { continue }
            let text = line[range.upperBound...]
            guard let colon = text.firstIndex(of: ":"), let api = apiTimes[String(text[..<colon])] else { continue }
            for field in text[text.index(after: colon)...].split(separator: " ") {
                let parts = field.split(separator: "=")
                guard parts.count == 2, let value = Double(parts[1]) else { continue }
                let name = String(parts[0])
                let duration = Duration.nanoseconds(Int64(value * 1e6))
                if name == "total" {
                    outside.record(api - duration)
                    continue
                }
                if let index = steps.firstIndex(where: { $0.name == "  " + name }) {
                    steps[index].record(duration)
                } else {
                    var series = Series(name: "  " + name)
                    series.record(duration)
                    steps.append(series)
                }
            }
        }
    }

    /// The median of one step, if it was logged.
    func median(of step: String) -> Double? { steps.first { $0.name == "  " + step }?.median }

    func print() {
        guard !steps.isEmpty else {
            Swift.print("no `start timing` lines in the daemon's log (is KEYHOLD_TIMING=1 honoured by this keyhold build?)")
            return
        }
        Swift.print("daemon steps of the timed (b) starts (KEYHOLD_TIMING=1; SandboxService.startLocked):")
        Swift.print(Series.header)
        for series in steps + [outside] { Swift.print(series.row) }
    }
}
