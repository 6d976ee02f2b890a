/// Summaries of samples, the same way in every benchmark.
public enum Percentiles {
    /// The median: the middle sample, or the mean of the two middle ones for an even count; NaN when empty.
    public static func median(_ samples: [Double]) -> Double {
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The nearest-rank percentile `p` (0...100); the median for 50; NaN when empty.
    public static func percentile(_ samples: [Double], _ p: Double) -> Double {
        if p == 50 { return median(samples) }
        let sorted = samples.sorted()
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
