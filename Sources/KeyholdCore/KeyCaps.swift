/// Limits a tenant sets on its own keys' brokered use (`keyhold tenant set-caps`): enforced by the listener inside
/// its sandboxes exactly like a managed plan's caps. A nil field is no limit.
public struct KeyCaps: Codable, Sendable, Equatable {
    public var tokensPerDay: Int?
    public var tokensPerMonth: Int?
    public var requestsPerMinute: Int?
    public var usdPerMonth: Double?

    public init(tokensPerDay: Int? = nil, tokensPerMonth: Int? = nil, requestsPerMinute: Int? = nil, usdPerMonth: Double? = nil) {
        self.tokensPerDay = tokensPerDay
        self.tokensPerMonth = tokensPerMonth
        self.requestsPerMinute = requestsPerMinute
        self.usdPerMonth = usdPerMonth
    }

    /// Whether no field limits anything.
    public var isEmpty: Bool { tokensPerDay == nil && tokensPerMonth == nil && requestsPerMinute == nil && usdPerMonth == nil }

    /// The largest limits accepted (`deploy/openapi.yaml` states the same).
    public static let maximumTokens = 1_000_000_000_000
    public static let maximumRequestsPerMinute = 1_000_000_000
    public static let maximumUSDPerMonth = 1_000_000.0

    /// Refuses a limit that is not positive or is past the largest accepted, naming the field.
    /// - Throws: `KeyholdError.invalidInput`.
    public func validate() throws {
        let counts = [
            ("tokens_per_day", tokensPerDay, Self.maximumTokens), ("tokens_per_month", tokensPerMonth, Self.maximumTokens),
            ("requests_per_minute", requestsPerMinute, Self.maximumRequestsPerMinute),
        ]
        for (name, value, maximum) in counts {
            if let value, value < 1 || value > maximum {
                throw KeyholdError.invalidInput("\(name) must be between 1 and \(maximum), or left out for no limit")
            }
        }
        if let usd = usdPerMonth, !(usd > 0 && usd <= Self.maximumUSDPerMonth) {
            throw KeyholdError.invalidInput("usd_per_month must be more than 0 and at most 1000000 dollars, or left out for no limit")
        }
    }

    /// The caps the ledger enforces: each missing limit out of reach (a million dollars a month, in picodollars, still
    /// fits the ledger's 64 bits).
    /// - Parameter defaultMaxTokens: the output reserved for a request that states no maximum.
    public func caps(defaultMaxTokens: Int) -> Caps {
        Caps(
            tokensPerDay: tokensPerDay ?? Int.max / 4, tokensPerMonth: tokensPerMonth ?? Int.max / 4,
            requestsPerMinute: requestsPerMinute ?? Int.max / 4, usdPerMonth: usdPerMonth ?? 1e6, defaultMaxTokens: defaultMaxTokens)
    }
}
