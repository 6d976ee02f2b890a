/// What an audit record says happened: a dotted verb, one per kind of event. The admin API's document lists the same
/// values (a test checks that they agree).
public enum AuditAction: String, Codable, Sendable, CaseIterable {
    case tenantCreate = "tenant.create"
    case tenantPlan = "tenant.plan"
    case tenantSuspend = "tenant.suspend"
    case tenantResume = "tenant.resume"
    case tenantDelete = "tenant.delete"
    /// A tenant's own caps on its keys' use were set.
    case tenantKeyCaps = "tenant.key_caps"
    /// A tenant's alert webhook was set or cleared.
    case tenantAlertWebhook = "tenant.alert_webhook"
    case keySet = "key.set"
    case keyValidate = "key.validate"
    case keyRotate = "key.rotate"
    case keyRetire = "key.retire"
    case keyRevoke = "key.revoke"
    /// A key decrypted into an agent's environment (or handed to its broker).
    case keyInject = "key.inject"
    /// Uses of a brokered key, counted per flush.
    case keyUse = "key.use"
    /// A scheduled or asked-for check of a key with its provider.
    case keyHealth = "key.health"
    /// A tenant moved onto (or back off) the platform's key after its own was refused.
    case keyFallback = "key.fallback"
    /// A brokered key's placeholder sent somewhere other than its destination.
    case keyMisuse = "key.misuse"
    case platformKeySet = "platform.key.set"
    case secretSet = "secret.set"
    case secretRevoke = "secret.revoke"
    case sandboxStart = "sandbox.start"
    case sandboxStop = "sandbox.stop"
    /// The agent exited on its own and the reconciler restarted it.
    case sandboxCrash = "sandbox.crash"
    /// The agent kept crashing and the reconciler gave up.
    case sandboxFail = "sandbox.fail"
    /// The sandbox was stopped because its host lost its lease (a fleet).
    case sandboxFenced = "sandbox.fenced"
    /// The sandbox was started on another host after its own died (a fleet).
    case sandboxFailover = "sandbox.failover"
    /// The agent's state went over the plan's `state_max` and was made read-only.
    case sandboxStateLimit = "sandbox.state-limit"
    case egressAllow = "egress.allow"
    case egressDeny = "egress.deny"
    case kekRotate = "kek.rotate"
    case kekRetire = "kek.retire"
    case tokenCreate = "token.create"
    case tokenRevoke = "token.revoke"
    case consoleLink = "console.link"
    case consoleSignin = "console.signin"
    case usageAlert = "usage.alert"
    /// Requests whose output maximum a cap lowered, counted per flush.
    case usageClamp = "usage.clamp"
    case hostActivate = "host.activate"
    case hostDrain = "host.drain"
    case hostForget = "host.forget"
}

/// How what an audit record describes ended. The admin API's document lists the same values (a test checks).
public enum AuditOutcome: String, Codable, Sendable, CaseIterable {
    case ok
    /// Keyhold refused it (bad input, a rule, a provider's verdict on a key).
    case refused
    /// It was attempted and failed.
    case failed
    /// A multi-step operation (a rotation) began.
    case started
    /// A multi-step operation finished.
    case done
    /// A rotation the daemon finished after it was restarted.
    case completedAfterRestart = "completed-after-restart"
    /// Requests were served with a lower output maximum (`usage.clamp`).
    case clamped
    /// An agent's state was made read-only (`sandbox.state-limit`).
    case readOnly = "read-only"
    /// `key.fallback`: the tenant now runs on the platform's key, or back on its own.
    case managed, byok
    /// `key.health`: the provider's verdict on the key.
    case invalid
    case outOfCredit = "out-of-credit"
    case rateLimited = "rate-limited"
    case unreachable

    /// A key check's verdict as an outcome.
    public init(_ health: KeyHealth) {
        switch health {
        case .ok: self = .ok
        case .invalid: self = .invalid
        case .outOfCredit: self = .outOfCredit
        case .rateLimited: self = .rateLimited
        case .unreachable: self = .unreachable
        }
    }
}
