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
    var median: Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The nearest-rank percentile `p` (0...100).
    func percentile(_ p: Double) -> Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

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

/// `text` padded with spaces to `width` (on the left when `left`).
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}
