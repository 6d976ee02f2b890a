/// How the daemon checks keys with their providers.
public struct KeyCheckOptions: Sendable {
    /// Scheduled checks started per second for each provider, at most (`--key-check-rate`).
    public var callsPerSecondPerProvider: Double
    /// How long a provider may take to answer before the key is `unreachable` (`--key-check-timeout`).
    public var timeoutSeconds: Int64

    public init(callsPerSecondPerProvider: Double = 5, timeoutSeconds: Int64 = 10) {
        self.callsPerSecondPerProvider = callsPerSecondPerProvider
        self.timeoutSeconds = timeoutSeconds
    }
}
