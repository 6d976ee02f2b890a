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

/// A key rotation's outcome so far.
public enum RotationState: String, Codable, Sendable, CaseIterable {
    case running, done, failed
}
