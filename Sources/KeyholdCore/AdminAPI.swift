/// The JSON bodies of the admin API, shared by the daemon and the CLI.
/// Encoded with snake_case keys (see `AdminJSON`).
public enum AdminAPI {}

extension AdminAPI {
    public struct CreateTenant: Codable, Sendable {
        public var name: String
        public var plan: String
        /// The agent's command line inside the sandbox (argv[0] is an absolute path).
        public var agent: [String]?
        /// The agent sends `READY=1` through sd_notify when it is ready (used by rotations).
        public var agentNotify: Bool?
        public init(name: String, plan: String, agent: [String]?, agentNotify: Bool? = nil) {
            self.name = name
            self.plan = plan
            self.agent = agent
            self.agentNotify = agentNotify
        }
    }

    public struct SetPlan: Codable, Sendable {
        public var plan: String
        public init(plan: String) { self.plan = plan }
    }

    /// `PUT /v1/tenants/{tenant}/alert-webhook`: an http(s) URL, or null to fall back to the plan's webhook.
    public struct SetAlertWebhook: Codable, Sendable {
        public var url: String?
        public init(url: String?) { self.url = url }
    }

    public struct Tenant: Codable, Sendable {
        public var name: String
        public var plan: String
        public var state: String
        public var agent: [String]
        public var agentNotify: Bool
        /// Where usage alerts are POSTed for this tenant (replacing the plan's webhook), when set.
        public var alertWebhook: String?
        /// The limits the tenant set on its own keys' brokered use, when it set any.
        public var keyCaps: KeyCaps?
        public var createdAt: String
        public var keys: [Key]?
        /// Every destination the tenant's BYOK sandbox may reach, with where each comes from (absent on managed plans).
        public var egress: [EgressEntry]?
        public init(
            name: String, plan: String, state: String, agent: [String], agentNotify: Bool, alertWebhook: String? = nil, createdAt: String,
            keys: [Key]?, egress: [EgressEntry]? = nil, keyCaps: KeyCaps? = nil
        ) {
            self.egress = egress
            self.keyCaps = keyCaps
            self.name = name
            self.plan = plan
            self.state = state
            self.agent = agent
            self.agentNotify = agentNotify
            self.alertWebhook = alertWebhook
            self.createdAt = createdAt
            self.keys = keys
        }
    }

    /// One destination a BYOK sandbox may reach.
    public struct EgressEntry: Codable, Sendable, Equatable {
        /// `host:port` for HTTPS, `http://host:port` for plain HTTP.
        public var destination: String
        /// Whether it may be a loopback or private address (an explicit choice).
        public var allowPrivate: Bool
        /// `key PROVIDER`, `plan PLAN` or `tenant`.
        public var source: String
        public init(destination: String, allowPrivate: Bool, source: String) {
            self.destination = destination
            self.allowPrivate = allowPrivate
            self.source = source
        }
    }

    /// `POST /v1/tenants/{tenant}/egress`.
    public struct AllowEgress: Codable, Sendable {
        /// `HOST[:PORT]` or `http://HOST[:PORT]`.
        public var destination: String
        /// Required for a loopback or private destination.
        public var allowPrivate: Bool?
        public init(destination: String, allowPrivate: Bool? = nil) {
            self.destination = destination
            self.allowPrivate = allowPrivate
        }
    }

    /// The outcome of a key rotation.
    public struct Rotation: Codable, Sendable {
        enum CodingKeys: String, CodingKey {
            case provider, fromVersion, toVersion, fromFingerprint, toFingerprint, oldUnits, newUnits, seconds, readinessSeconds
        }
        public var provider: String
        public var fromVersion: Int?
        public var toVersion: Int?
        public var fromFingerprint: String?
        public var toFingerprint: String?
        public var oldUnits: [String]
        public var newUnits: [String]
        /// Wall time of the whole rotation.
        public var seconds: Double
        /// Of which the new units' readiness wait.
        public var readinessSeconds: Double
        public init(
            provider: String, fromVersion: Int?, toVersion: Int?, fromFingerprint: String?, toFingerprint: String?, oldUnits: [String],
            newUnits: [String], seconds: Double, readinessSeconds: Double
        ) {
            self.provider = provider
            self.fromVersion = fromVersion
            self.toVersion = toVersion
            self.fromFingerprint = fromFingerprint
            self.toFingerprint = toFingerprint
            self.oldUnits = oldUnits
            self.newUnits = newUnits
            self.seconds = seconds
            self.readinessSeconds = readinessSeconds
        }
    }

    /// The key travels in this body over the admin socket only; it is never echoed back.
    public struct SetKey: Codable, Sendable {
        // snake_case in JSON: acronyms are spelled so that the key survives the round trip.
        enum CodingKeys: String, CodingKey {
            case key, baseURL = "baseUrl", validate, skipShapeCheck
        }

        public var key: String
        public var baseURL: String?
        public var validate: Bool
        public var skipShapeCheck: Bool
        public init(key: String, baseURL: String?, validate: Bool, skipShapeCheck: Bool) {
            self.key = key
            self.baseURL = baseURL
            self.validate = validate
            self.skipShapeCheck = skipShapeCheck
        }
    }

    public struct Key: Codable, Sendable {
        // snake_case in JSON: acronyms are spelled so that the key survives the round trip.
        enum CodingKeys: String, CodingKey {
            case provider, version, state, fingerprint, kekID = "kekId", baseURL = "baseUrl", createdAt, health, healthDetail, validatedAt
        }

        public var provider: String
        public var version: Int
        public var state: String
        public var fingerprint: String
        public var kekID: String
        public var baseURL: String?
        public var createdAt: String
        /// `ok`, `invalid`, `out-of-credit`, `rate-limited` or `unreachable` as of `validatedAt`; nil until first checked.
        public var health: String?
        /// The provider's answer at the last check, in one line (never the key).
        public var healthDetail: String?
        /// When the key was last checked against its provider.
        public var validatedAt: String?
        public init(
            provider: String, version: Int, state: String, fingerprint: String, kekID: String, baseURL: String?, createdAt: String,
            health: String? = nil, healthDetail: String? = nil, validatedAt: String? = nil
        ) {
            self.provider = provider
            self.version = version
            self.state = state
            self.fingerprint = fingerprint
            self.kekID = kekID
            self.baseURL = baseURL
            self.createdAt = createdAt
            self.health = health
            self.healthDetail = healthDetail
            self.validatedAt = validatedAt
        }
    }

    public struct Validation: Codable, Sendable {
        public var provider: String
        public var version: Int
        public var fingerprint: String
        public var valid: Bool
        public var httpStatus: Int?
        public var message: String
        /// `ok`, `invalid`, `out-of-credit`, `rate-limited` or `unreachable`.
        public var health: String?
        public init(provider: String, version: Int, fingerprint: String, valid: Bool, httpStatus: Int?, message: String, health: String? = nil) {
            self.provider = provider
            self.version = version
            self.fingerprint = fingerprint
            self.valid = valid
            self.httpStatus = httpStatus
            self.message = message
            self.health = health
        }
    }

    public struct Revoked: Codable, Sendable {
        public var provider: String
        public var versions: [Int]
        public var stoppedSandboxes: [String]
        public init(provider: String, versions: [Int], stoppedSandboxes: [String]) {
            self.provider = provider
            self.versions = versions
            self.stoppedSandboxes = stoppedSandboxes
        }
    }

    public struct Sandbox: Codable, Sendable {
        // snake_case in JSON: acronyms are spelled so that the key survives the round trip.
        enum CodingKeys: String, CodingKey {
            case tenant, unit, state, systemdState, invocationID = "invocationId", mainPID = "mainPid", keyVersions, restarts, lastError, updatedAt,
                network, egress, egressRefused, stateDirectory, stateBytes, stateMaxBytes, host
        }

        public var tenant: String
        public var unit: String
        /// Keyhold's view: starting, running, stopping, stopped, failed.
        public var state: String
        /// systemd's view (`ActiveState/SubState`), when systemd was asked.
        public var systemdState: String?
        public var invocationID: String?
        public var mainPID: Int?
        public var keyVersions: [String]
        public var restarts: Int
        public var lastError: String?
        public var updatedAt: String
        /// The sandbox's network: its own namespace, and its way out (while it runs).
        public var network: String?
        /// The destinations a BYOK sandbox may reach, with their sources.
        public var egress: [String]?
        /// Connections the egress gateway refused since the sandbox started.
        public var egressRefused: Int?
        /// The agent's persistent state directory inside the sandbox (`$STATE_DIRECTORY`).
        public var stateDirectory: String?
        /// What the state directory holds, and the plan's limit.
        public var stateBytes: UInt64?
        public var stateMaxBytes: UInt64?
        /// The host it runs on.
        public var host: String?
        public init(
            tenant: String, unit: String, state: String, systemdState: String?, invocationID: String?, mainPID: Int?,
            keyVersions: [String], restarts: Int, lastError: String?, updatedAt: String
        ) {
            self.tenant = tenant
            self.unit = unit
            self.state = state
            self.systemdState = systemdState
            self.invocationID = invocationID
            self.mainPID = mainPID
            self.keyVersions = keyVersions
            self.restarts = restarts
            self.lastError = lastError
            self.updatedAt = updatedAt
        }
    }

    public struct Logs: Codable, Sendable {
        public var unit: String
        public var lines: [String]
        public init(unit: String, lines: [String]) {
            self.unit = unit
            self.lines = lines
        }
    }

    public struct CreateAdminToken: Codable, Sendable {
        public var name: String
        /// Makes a tenant token that acts on this tenant only.
        public var tenant: String?
        public init(name: String, tenant: String? = nil) {
            self.name = name
            self.tenant = tenant
        }
    }

    /// Returned once, when the token is created; only its hash is stored.
    public struct AdminToken: Codable, Sendable {
        public var name: String
        public var token: String?
        public var createdAt: String
        /// The tenant a tenant token acts on; absent for an admin token.
        public var tenant: String?
        public init(name: String, token: String?, createdAt: String, tenant: String? = nil) {
            self.name = name
            self.token = token
            self.createdAt = createdAt
            self.tenant = tenant
        }
    }

    public struct Health: Codable, Sendable {
        public var status: String
        public var version: String
        public var systemd: String
        /// Connections the BYOK egress gateway refused since the daemon started.
        public var egressRefused: Int?
        /// The version of the data the metering proxy's caches follow (tokens, tenants, keys), as this host's proxy
        /// sees it now; absent without a proxy, or while it is unknown (nothing is then cached).
        public var proxyGeneration: Int?
        /// Writes the metering proxy's usage journal could not make since the daemon started (absent without a proxy).
        public var usageJournalWriteFailures: Int?
        public init(
            status: String, version: String, systemd: String, egressRefused: Int? = nil, proxyGeneration: Int? = nil,
            usageJournalWriteFailures: Int? = nil
        ) {
            self.status = status
            self.version = version
            self.systemd = systemd
            self.egressRefused = egressRefused
            self.proxyGeneration = proxyGeneration
            self.usageJournalWriteFailures = usageJournalWriteFailures
        }
    }

    /// A host of the fleet.
    public struct Host: Codable, Sendable {
        public var id: String
        /// `active`, `draining`, or `down` (no heartbeat for the lease time).
        public var state: String
        public var sandboxes: Int
        public var capacity: Int
        /// Seconds since the last heartbeat, on the database's clock.
        public var heartbeatAgeSeconds: Double
        public var startedAt: String
        /// The id of the KEK the host's daemon seals with (nil before it reported one).
        public var kek: String?
        public init(id: String, state: String, sandboxes: Int, capacity: Int, heartbeatAgeSeconds: Double, startedAt: String, kek: String? = nil) {
            self.id = id
            self.state = state
            self.sandboxes = sandboxes
            self.capacity = capacity
            self.heartbeatAgeSeconds = heartbeatAgeSeconds
            self.startedAt = startedAt
            self.kek = kek
        }
    }

    /// What a drain moved.
    public struct Drain: Codable, Sendable {
        public var host: String
        /// Tenants placed on other hosts.
        public var moved: [String]
        /// Tenants that found no host with room and stay.
        public var left: Int
        public init(host: String, moved: [String], left: Int) {
            self.host = host
            self.moved = moved
            self.left = left
        }
    }

    public struct KEKStatus: Codable, Sendable {
        enum CodingKeys: String, CodingKey { case id, current, wrappedKeys, present }
        public var id: String
        public var current: Bool
        /// Data keys this KEK wraps.
        public var wrappedKeys: Int
        /// Whether the KEK file is on this host.
        public var present: Bool
        public init(id: String, current: Bool, wrappedKeys: Int, present: Bool) {
            self.id = id
            self.current = current
            self.wrappedKeys = wrappedKeys
            self.present = present
        }
    }

    public struct KEKRotation: Codable, Sendable {
        enum CodingKeys: String, CodingKey { case kekID = "kekId", rewrapped, resumed, seconds }
        public var kekID: String
        public var rewrapped: Int
        public var resumed: Bool
        public var seconds: Double
        public init(kekID: String, rewrapped: Int, resumed: Bool, seconds: Double) {
            self.kekID = kekID
            self.rewrapped = rewrapped
            self.resumed = resumed
            self.seconds = seconds
        }
    }

    /// Usage against caps.
    public struct UsageReport: Codable, Sendable {
        public struct CapUsage: Codable, Sendable {
            public var cap: String
            public var used: Double
            public var limit: Double
            public var percent: Double
            public init(cap: String, used: Double, limit: Double, percent: Double) {
                self.cap = cap
                self.used = used
                self.limit = limit
                self.percent = percent
            }
        }
        public struct Line: Codable, Sendable {
            public var key: String
            public var requests: Int
            public var tokens: Int
            public var usd: Double
            public init(key: String, requests: Int, tokens: Int, usd: Double) {
                self.key = key
                self.requests = requests
                self.tokens = tokens
                self.usd = usd
            }
        }
        public var tenant: String
        public var plan: String
        public var requestsThisMonth: Int
        /// Of this month's requests, how many the caps clamped (their output maximum lowered to what remained).
        public var clampedThisMonth: Int?
        public var caps: [CapUsage]
        public var breakdown: [Line]
        public init(tenant: String, plan: String, requestsThisMonth: Int, clampedThisMonth: Int = 0, caps: [CapUsage], breakdown: [Line]) {
            self.tenant = tenant
            self.plan = plan
            self.requestsThisMonth = requestsThisMonth
            self.clampedThisMonth = clampedThisMonth
            self.caps = caps
            self.breakdown = breakdown
        }
    }

    /// The body of every error answer.
    public struct ErrorBody: Codable, Sendable {
        public struct Detail: Codable, Sendable {
            public var code: String
            public var message: String
        }
        public var error: Detail
        public init(code: String, message: String) { self.error = Detail(code: code, message: message) }
    }
}
