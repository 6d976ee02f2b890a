import BenchmarkSupport
import Foundation

/// Durations of one kind of start, summarised in milliseconds.
struct Series: Sendable {
    let name: String
    private(set) var samples: [Double] = []

    init(name: String) { self.name = name }

    mutating func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        samples.append(Double(seconds) * 1000 + Double(attoseconds) / 1e15)
    }

    /// The median (mean of the two middle samples when the count is even).
    var median: Double { Percentiles.median(samples) }

    /// The nearest-rank percentile `p` (0...100).
    func percentile(_ p: Double) -> Double { Percentiles.percentile(samples, p) }

    /// One table row: name, count, median, p90, p99, min, max.
    var row: String {
        let values = [median, percentile(90), percentile(99), samples.min() ?? .nan, samples.max() ?? .nan]
        return pad(name, 44) + pad("\(samples.count)", 5, left: true) + values.map { pad(milliseconds($0), 9, left: true) }.joined()
    }

    static let header = pad("", 44) + pad("n", 5, left: true) + ["median", "p90", "p99", "min", "max"].map { pad($0, 9, left: true) }.joined()
}

/// `value` in ms with one decimal.
func milliseconds(_ value: Double) -> String {
    value.isFinite ? String(format: "%.1f", value) : "-"
}
