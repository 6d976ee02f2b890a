/// Whether a plan's agents call providers with the tenant's own key or through Keyhold's proxy.
public enum PlanKind: String, Codable, Sendable {
    /// Bring your own key: the tenant's key is injected and the agent calls the provider directly.
    case byok
    /// No tenant key: the agent calls Keyhold's metering proxy with a per-sandbox token.
    case managed
}

/// A plan a hosting provider sells, loaded from `plans/*.yaml`.
public struct Plan: Codable, Sendable, Equatable {
    // snake_case in JSON: acronyms are spelled so that the key survives the round trip.
    enum CodingKeys: String, CodingKey {
        case id, displayName, monthlyPriceUSD = "monthlyPriceUsd", kind, providers, models, caps, alertThresholds, alertWebhook, sandbox,
            keyHealth, keyDelivery
    }

    public var id: String
    public var displayName: String
    public var monthlyPriceUSD: Double
    public var kind: PlanKind
    /// Providers whose keys a BYOK tenant may store (empty on managed plans).
    public var providers: [Provider]
    /// Models a managed tenant may call, with their prices (empty on BYOK plans).
    public var models: [ModelPrice]
    /// Usage caps (managed plans only).
    public var caps: Caps?
    /// Percentages of a cap at which an alert fires, once per window.
    public var alertThresholds: [Int]
    /// Where alerts are POSTed as JSON, if anywhere.
    public var alertWebhook: String?
    public var sandbox: SandboxLimits
    /// How often the tenants' keys are checked with their providers, and what an invalid one does to the agent.
    public var keyHealth: KeyHealthPolicy
    /// How a BYOK agent gets its tenant's keys: in its environment, or brokered (a placeholder; the daemon adds the key).
    public var keyDelivery: KeyDelivery

    public init(
        id: String, displayName: String, monthlyPriceUSD: Double, kind: PlanKind, providers: [Provider], models: [ModelPrice],
        caps: Caps?, alertThresholds: [Int], alertWebhook: String?, sandbox: SandboxLimits, keyHealth: KeyHealthPolicy = .init(),
        keyDelivery: KeyDelivery = .environment
    ) {
        self.id = id
        self.displayName = displayName
        self.monthlyPriceUSD = monthlyPriceUSD
        self.kind = kind
        self.providers = providers
        self.models = models
        self.caps = caps
        self.alertThresholds = alertThresholds
        self.alertWebhook = alertWebhook
        self.sandbox = sandbox
        self.keyHealth = keyHealth
        self.keyDelivery = keyDelivery
    }

    /// The providers whose keys are injected into this plan's sandboxes.
    public func allows(_ provider: Provider) -> Bool { kind == .byok && providers.contains(provider) }

    /// Whether this plan's agents get placeholders instead of keys.
    public var isBrokered: Bool { kind == .byok && keyDelivery == .brokered }

    /// The plan's entry for a model id a client sent: an exact id first, then an id's dated snapshot, then a
    /// pattern, each in the plan's order.
    public func model(matching model: String, provider: Provider) -> ModelPrice? {
        let candidates = models.lazy.filter { $0.provider == provider }
        return candidates.first { $0.id == model } ?? candidates.first { ModelMatch.isSnapshot(model, of: $0.id) }
            ?? candidates.first { $0.pattern.map { ModelMatch.glob($0, matches: model) } ?? false }
    }
}

/// How a BYOK plan hands its tenants' keys to their agents (`key_delivery:`).
public enum KeyDelivery: String, Codable, Sendable, CaseIterable {
    /// The key is decrypted at injection and written into the agent's environment.
    case environment
    /// The agent's environment holds a placeholder; the daemon's listener inside the sandbox puts the real key in
    /// the provider's header of each request, decrypted for that request only.
    case brokered
}

/// A model a managed plan allows, and what its tokens cost.
public struct ModelPrice: Codable, Sendable, Equatable {
    // snake_case in JSON: acronyms are spelled so that the key survives the round trip.
    enum CodingKeys: String, CodingKey {
        case id, provider, inputUSDPerMillion = "inputUsdPerMillion", outputUSDPerMillion = "outputUsdPerMillion", cachedInputUSDPerMillion =
            "cachedInputUsdPerMillion", cacheWriteUSDPerMillion = "cacheWriteUsdPerMillion", pattern, priceDate
    }

    /// The model as the plan lists it (`GET /v1/models`); it also matches its dated snapshots (`ModelMatch`).
    public var id: String
    /// A pattern of the model ids this entry covers (`gpt-5*`), when it covers more than its family.
    public var pattern: String?
    /// When the prices were taken from the provider's price list (`yyyy-mm-dd`), if the plan says.
    public var priceDate: String?
    public var provider: Provider
    /// USD per million input tokens.
    public var inputUSDPerMillion: Double
    /// USD per million output tokens (reasoning tokens are output tokens).
    public var outputUSDPerMillion: Double
    /// USD per million cached input tokens read (defaults to the input price).
    public var cachedInputUSDPerMillion: Double
    /// USD per million input tokens written to the cache (Anthropic; defaults to the input price).
    public var cacheWriteUSDPerMillion: Double

    public init(
        id: String, provider: Provider, inputUSDPerMillion: Double, outputUSDPerMillion: Double,
        cachedInputUSDPerMillion: Double? = nil, cacheWriteUSDPerMillion: Double? = nil, pattern: String? = nil, priceDate: String? = nil
    ) {
        self.id = id
        self.pattern = pattern
        self.priceDate = priceDate
        self.provider = provider
        self.inputUSDPerMillion = inputUSDPerMillion
        self.outputUSDPerMillion = outputUSDPerMillion
        self.cachedInputUSDPerMillion = cachedInputUSDPerMillion ?? inputUSDPerMillion
        self.cacheWriteUSDPerMillion = cacheWriteUSDPerMillion ?? inputUSDPerMillion
    }
}

/// The usage caps of a managed plan.
public struct Caps: Codable, Sendable, Equatable {
    public var tokensPerDay: Int
    public var tokensPerMonth: Int
    public var requestsPerMinute: Int
    public var usdPerMonth: Double
    /// Tokens reserved for a request that does not say `max_tokens`.
    public var defaultMaxTokens: Int
    /// What a request gets when what remains of the caps cannot cover its whole output (`on_cap:`).
    public var onCap: CapAction
    /// Below this many output tokens left, a clamped request is refused instead (`min_output_tokens:`).
    public var minOutputTokens: Int

    /// The output a request may be clamped down to when a plan states no `min_output_tokens:`.
    public static let defaultMinOutputTokens = 256

    public init(
        tokensPerDay: Int, tokensPerMonth: Int, requestsPerMinute: Int, usdPerMonth: Double, defaultMaxTokens: Int, onCap: CapAction = .clamp,
        minOutputTokens: Int = Caps.defaultMinOutputTokens
    ) {
        self.tokensPerDay = tokensPerDay
        self.tokensPerMonth = tokensPerMonth
        self.requestsPerMinute = requestsPerMinute
        self.usdPerMonth = usdPerMonth
        self.defaultMaxTokens = defaultMaxTokens
        self.onCap = onCap
        self.minOutputTokens = minOutputTokens
    }
}

/// What the metering proxy does with a request whose whole `max_tokens` the caps' remainder cannot cover.
public enum CapAction: String, Codable, Sendable, CaseIterable {
    /// Lower the request's output maximum to what the caps still cover, so the provider stops there (its own
    /// "max tokens" stop reason); refuse only below `min_output_tokens`.
    case clamp
    /// Refuse the request (429 with when the cap resets).
    case refuse
}

/// The resources and the profile of a plan's sandboxes.
public struct SandboxLimits: Codable, Sendable, Equatable {
    /// The name of a profile in `sandbox-profiles/`.
    public var profile: String
    public var memoryMaxBytes: UInt64
    /// CPU time per wall-clock second, in percent of one CPU (`CPUQuota=`).
    public var cpuQuotaPercent: Int
    public var tasksMax: Int
    /// Destinations every BYOK sandbox of the plan may reach besides its keys' providers (`egress_allow:`).
    public var egressAllow: [EgressRule]
    /// The most the agent's persistent state directory may hold (`state_max:`, default 1G).
    public var stateMaxBytes: UInt64
    /// Hardened units kept started and waiting for a tenant (`warm_pool:`); nil keeps none.
    public var warmPool: WarmPoolPolicy?
    /// The size of each of the agent's `/tmp` and `/var/tmp` (`tmp_max:`), tmpfs of its own whose pages count against
    /// `memoryMaxBytes`: an agent that fills them hits ENOSPC or its memory limit, never the host's disk.
    public var tmpMaxBytes: UInt64

    /// The state limit when a plan states none.
    public static let defaultStateMaxBytes: UInt64 = 1 << 30
    /// The `/tmp` size when a plan states none (or `memory_max:`, when that is smaller).
    public static let defaultTmpMaxBytes: UInt64 = 256 << 20

    public init(
        profile: String, memoryMaxBytes: UInt64, cpuQuotaPercent: Int, tasksMax: Int, egressAllow: [EgressRule] = [],
        stateMaxBytes: UInt64 = SandboxLimits.defaultStateMaxBytes, warmPool: WarmPoolPolicy? = nil, tmpMaxBytes: UInt64? = nil
    ) {
        self.tmpMaxBytes = tmpMaxBytes ?? min(SandboxLimits.defaultTmpMaxBytes, memoryMaxBytes)
        self.profile = profile
        self.memoryMaxBytes = memoryMaxBytes
        self.cpuQuotaPercent = cpuQuotaPercent
        self.tasksMax = tasksMax
        self.egressAllow = egressAllow
        self.stateMaxBytes = stateMaxBytes
        self.warmPool = warmPool
    }
}

/// A plan's warm pool: `size` units started ahead with the plan's limits and hardening, each waiting for the one
/// tenant whose start takes it; a unit nobody took within `maxWaitSeconds` is stopped and replaced.
public struct WarmPoolPolicy: Codable, Sendable, Equatable {
    public var size: Int
    public var maxWaitSeconds: Int

    /// How long a pooled unit waits when a plan states no `warm_pool_max_wait:`.
    public static let defaultMaxWaitSeconds = 600
    /// The largest pool a plan may ask for.
    public static let maximumSize = 256

    public init(size: Int, maxWaitSeconds: Int = WarmPoolPolicy.defaultMaxWaitSeconds) {
        self.size = size
        self.maxWaitSeconds = maxWaitSeconds
    }
}

/// What happens to an agent whose key its provider refuses (HTTP 401 or 403).
public enum InvalidKeyAction: String, Codable, Sendable, CaseIterable {
    /// Nothing: the agent keeps running (its calls fail until the tenant fixes its key).
    case keep
    /// The agent is stopped until the tenant fixes its key and starts it again.
    case stop
    /// The agent is restarted on the managed path (the metering proxy, the platform's key, the fallback plan's caps)
    /// until the tenant's key works again.
    case fallbackManaged = "fallback-managed"
}

/// A BYOK plan's key health rules (`revalidate_every:`, `on_invalid_key:`, `fallback_plan:`).
public struct KeyHealthPolicy: Codable, Sendable, Equatable {
    /// Seconds between two checks of a key with its provider (jittered by up to a tenth); 0 never checks on a schedule.
    public var revalidateEverySeconds: Int
    public var onInvalidKey: InvalidKeyAction
    /// The managed plan an agent falls back to (with `fallback-managed`).
    public var fallbackPlan: String?
    /// How many times a calendar month (UTC) a tenant may be moved onto the fallback (`fallback_max_per_month:`): a
    /// tenant can make its own key invalid on purpose, and each move puts its agent on the platform's key. Past it,
    /// the agent keeps its invalid key (audited `key.fallback` refused). The fallback plan's caps count the whole
    /// month's usage, so leaving and re-entering resets nothing.
    public var fallbackMaxPerMonth: Int

    /// The bound when a plan names none.
    public static let defaultFallbackMaxPerMonth = 3

    public init(
        revalidateEverySeconds: Int = 86_400, onInvalidKey: InvalidKeyAction = .keep, fallbackPlan: String? = nil,
        fallbackMaxPerMonth: Int = KeyHealthPolicy.defaultFallbackMaxPerMonth
    ) {
        self.revalidateEverySeconds = revalidateEverySeconds
        self.onInvalidKey = onInvalidKey
        self.fallbackPlan = fallbackPlan
        self.fallbackMaxPerMonth = fallbackMaxPerMonth
    }
}
