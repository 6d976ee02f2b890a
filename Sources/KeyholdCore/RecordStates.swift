/// Whether a tenant's agents may run.
public enum TenantState: String, Codable, Sendable, CaseIterable {
    case active, suspended
}

/// Where a sandbox is in its life, as Keyhold records it (systemd's own view is `UnitStatus`).
public enum SandboxState: String, Codable, Sendable, CaseIterable {
    case starting, running, stopping, stopped, failed
}

/// What the reconciler converges a sandbox on.
public enum DesiredState: String, Codable, Sendable, CaseIterable {
    case running, stopped
}

/// A key version's place in its life: `pending` while a rotation rolls it out, `failed` when that rotation failed.
public enum KeyState: String, Codable, Sendable, CaseIterable {
    case pending, active, retired, revoked, failed
}

/// What a key's provider said when Keyhold last checked the key.
public enum KeyHealth: String, Codable, Sendable, CaseIterable {
    /// The provider accepted it.
    case ok
    /// The provider refused it (HTTP 401 or 403): revoked, mistyped or expired.
    case invalid
    /// The provider wants payment (HTTP 402).
    case outOfCredit = "out-of-credit"
    /// The provider accepted it but is throttling it (HTTP 429).
    case rateLimited = "rate-limited"
    /// The provider could not be asked, or gave no verdict (timeout, refused connection, 5xx).
    case unreachable
}

/// A key rotation's outcome so far.
public enum RotationState: String, Codable, Sendable, CaseIterable {
    case running, done, failed
}

/// The step a key rotation is about to take (prepared → starting-new → new-ready → stopping-old → finished), recorded before it is taken so that a killed daemon can finish or undo it.
public enum RotationStep: String, Codable, Sendable, CaseIterable {
    case prepared
    case startingNew = "starting-new"
    case newReady = "new-ready"
    case stoppingOld = "stopping-old"
    case finished
    /// The rotation failed and was undone: the old version kept serving.
    case rolledBack = "rolled-back"
}

/// How a usage report groups a tenant's metered requests: by model, by day, or by the tenant key (provider and
/// version) that served them.
public enum UsageGrouping: String, Codable, Sendable, CaseIterable {
    case model, day, key
}

/// What a stored usage row charged: the usage the provider reported, or the whole reservation of a request whose
/// usage never came (a killed proxy, a cut stream).
public enum UsageCharge: String, Codable, Sendable, CaseIterable {
    case usage, reservation
    /// A request still in flight when its reservation was flushed: charged its reservation until its settlement
    /// replaces the row (and for good if its host dies before settling it).
    case inFlight = "in-flight"
    /// A request refused before it was sent upstream.
    case nothing = "none"
}

/// A usage cap of a plan, as alerts and refusals name it.
public enum CapName: String, Codable, Sendable, CaseIterable {
    case requestsPerMinute = "requests_per_minute"
    case tokensPerDay = "tokens_per_day"
    case tokensPerMonth = "tokens_per_month"
    case usdPerMonth = "usd_per_month"
}
