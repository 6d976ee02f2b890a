/// What happened, as an admin reads it in the audit log. Never carries a key.
public struct AuditEvent: Codable, Sendable, Equatable {
    // snake_case in JSON: acronyms are spelled so that the key survives the round trip.
    enum CodingKeys: String, CodingKey {
        case actor, action, tenant, provider, keyVersion, fingerprint, outcome, unit, invocationID = "invocationId", details
    }

    /// The Unix user (from the admin socket's peer credentials) or the API token's name.
    public var actor: String
    /// A dotted verb such as `tenant.create`, `key.set`, `key.inject` (an `AuditAction`).
    public var action: String
    public var tenant: String?
    public var provider: String?
    public var keyVersion: Int?
    public var fingerprint: String?
    /// How it ended (an `AuditOutcome`: `ok`, `refused`, `failed`, ...).
    public var outcome: String
    public var unit: String?
    public var invocationID: String?
    /// Free-form facts (sorted by key in the hash), never secrets.
    public var details: [String: String]

    /// The detail that binds a record to its tenant's id (the audit log sets it from the name when a caller did not).
    public static let tenantIDDetail = "tenant_id"

    /// The id of the tenant the record is about, once it was written.
    public var tenantID: Int64? { details[Self.tenantIDDetail].flatMap { Int64($0) } }

    /// A new event.
    public init(
        actor: String, action: AuditAction, tenant: String? = nil, provider: String? = nil, keyVersion: Int? = nil,
        fingerprint: String? = nil, outcome: AuditOutcome = .ok, unit: String? = nil, invocationID: String? = nil,
        details: [String: String] = [:]
    ) {
        self.init(
            recordedBy: actor, action: action.rawValue, tenant: tenant, provider: provider, keyVersion: keyVersion, fingerprint: fingerprint,
            outcome: outcome.rawValue, unit: unit, invocationID: invocationID, details: details)
    }

    /// An event as it was recorded, its action and outcome as written (by this version of Keyhold or an older one).
    public init(
        recordedBy actor: String, action: String, tenant: String?, provider: String?, keyVersion: Int?, fingerprint: String?,
        outcome: String, unit: String?, invocationID: String?, details: [String: String]
    ) {
        self.actor = actor
        self.action = action
        self.tenant = tenant
        self.provider = provider
        self.keyVersion = keyVersion
        self.fingerprint = fingerprint
        self.outcome = outcome
        self.unit = unit
        self.invocationID = invocationID
        self.details = details
    }
}

/// One link of the hash-chained audit log.
public struct AuditRecord: Codable, Sendable, Equatable {
    /// 1, 2, 3... without gaps.
    public var seq: Int64
    /// UTC, RFC 3339 with milliseconds.
    public var time: String
    public var event: AuditEvent
    /// The `hash` of record `seq - 1` (64 zeros for the first record).
    public var prevHash: String
    /// SHA-256, hex, over `canonicalContent`.
    public var hash: String

    public init(seq: Int64, time: String, event: AuditEvent, prevHash: String, hash: String) {
        self.seq = seq
        self.time = time
        self.event = event
        self.prevHash = prevHash
        self.hash = hash
    }

    /// The hash of the record before the first one.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// The bytes the record's hash covers: every field but the hash itself, in a fixed order,
    /// each length-prefixed so that no two different records share a canonical form.
    public var canonicalContent: [UInt8] {
        var out: [UInt8] = Array("keyhold-audit-v1\n".utf8)
        func field(_ name: String, _ value: String?) {
            let bytes = Array((value ?? "").utf8)
            out += Array("\(name)\(value == nil ? "!" : "=")\(bytes.count):".utf8)
            out += bytes
            out.append(0x0A)
        }
        field("seq", String(seq))
        field("time", time)
        field("actor", event.actor)
        field("action", event.action)
        field("tenant", event.tenant)
        field("provider", event.provider)
        field("key_version", event.keyVersion.map(String.init))
        field("fingerprint", event.fingerprint)
        field("outcome", event.outcome)
        field("unit", event.unit)
        field("invocation_id", event.invocationID)
        for key in event.details.keys.sorted() {
            field("detail." + key, event.details[key])
        }
        field("prev_hash", prevHash)
        return out
    }
}
