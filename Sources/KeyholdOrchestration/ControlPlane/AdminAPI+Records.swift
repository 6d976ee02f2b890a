import KeyholdCore
import KeyholdStore
import KeyholdVault

// The admin API's views of stored records: the store knows its records, the API decides what a caller sees.

extension TenantRecord {
    /// The admin API's view of this tenant.
    func api(keys: [KeyVersionRecord]? = nil) -> AdminAPI.Tenant {
        AdminAPI.Tenant(
            name: name, plan: plan, state: state.rawValue, agent: agent, agentNotify: agentNotify, alertWebhook: alertWebhook, createdAt: createdAt,
            keys: keys?.map { $0.api }, keyCaps: keyCaps
        )
    }
}

extension SandboxRecord {
    /// The admin API's view, with systemd's state when known.
    func api(tenant: String, systemdState: String?) -> AdminAPI.Sandbox {
        var view = AdminAPI.Sandbox(
            tenant: tenant, unit: unit, state: state.rawValue, systemdState: systemdState, invocationID: invocationID, mainPID: mainPID,
            keyVersions: keyVersions, restarts: restarts, lastError: lastError, updatedAt: updatedAt
        )
        view.host = host
        return view
    }
}

extension KeyVersionRecord {
    /// The admin API's view of this key version: never the key.
    /// What a health check of this version records and reports.
    func checked(tenant: String) -> CheckedKey {
        CheckedKey(keyID: id, tenant: tenant, provider: provider, version: version, fingerprint: sealed.fingerprint)
    }

    var api: AdminAPI.Key {
        AdminAPI.Key(
            provider: provider.rawValue, version: version, state: state.rawValue, fingerprint: sealed.fingerprint, kekID: sealed.kekID,
            baseURL: baseURL, createdAt: createdAt, health: health?.rawValue, healthDetail: healthDetail, validatedAt: validatedAt
        )
    }
}

extension HostRecord {
    /// The admin API's view, with `down` for a host whose heartbeat is older than its own lease.
    var api: AdminAPI.Host {
        AdminAPI.Host(
            id: id, state: isDown ? "down" : state, sandboxes: liveSandboxes, capacity: maxSandboxes,
            heartbeatAgeSeconds: Double(heartbeatAgeMilliseconds) / 1000, startedAt: startedAt, kek: keks.first)
    }
}
