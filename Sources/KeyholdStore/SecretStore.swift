import Foundation
public import KeyholdCore
public import KeyholdVault

/// A tenant's generic secret as stored: its binding, and its newest version (sealed; nil once revoked).
public struct SecretRecord: Sendable, Equatable {
    public var id: Int64
    public var tenantID: Int64
    public var name: String
    public var binding: SecretBinding
    public var version: Int
    /// `active`, `retired` or `revoked`.
    public var state: String
    /// The newest version, sealed; its data key is destroyed once revoked.
    public var sealed: SealedKey
    public var updatedAt: String

    init(row: StoreRow) {
        id = row["id"]
        tenantID = row["tenant_id"]
        name = row["name"]
        binding = SecretBinding(
            host: row["host"], port: row["port"], header: row["header"], format: row["format"], environment: row["env"],
            allowPrivate: (row["allow_private"] as Int) != 0)
        version = row["version"]
        state = row["state"]
        sealed = SealedKey(
            ciphertext: [UInt8](row["ciphertext"] as Data), nonce: [UInt8](row["nonce"] as Data), tag: [UInt8](row["tag"] as Data),
            wrappedDEK: (row["wrapped_dek"] as Data?).map { [UInt8]($0) }, kekID: row["kek_id"], fingerprint: row["fingerprint"]
        )
        updatedAt = row["updated_at"]
    }

    /// What the newest version is bound to.
    public var sealingBinding: KeyBinding {
        KeyBinding(tenantID: tenantID, provider: SecretBinding.sealingLabel(name: name), version: version)
    }

    public var isActive: Bool { state == "active" }

    public var api: AdminAPI.Secret {
        AdminAPI.Secret(
            name: name, host: binding.destination, header: binding.header, format: binding.format, env: binding.environment,
            private: binding.allowPrivate, version: version, state: state, fingerprint: sealed.fingerprint, updatedAt: updatedAt)
    }
}

extension StoreTransaction {
    private static let secretColumns = """
        s.id, s.tenant_id, s.name, s.host, s.port, s.header, s.format, s.env, s.allow_private, s.updated_at,
        v.version, v.state, v.ciphertext, v.nonce, v.tag, v.wrapped_dek, v.kek_id, v.fingerprint
        """

    /// The version a new value of the tenant's secret `name` will have (1 for the first), and the secret's row id
    /// after writing its binding (made, or replaced by `binding`).
    public func prepareSecret(tenantID: Int64, name: String, binding: SecretBinding) throws -> (secretID: Int64, version: Int) {
        let now = Timestamp.now()
        let secretID: Int64
        if let existing: Int64 = try value("SELECT id FROM secrets WHERE tenant_id = ? AND name = ?", tenantID, name) {
            try execute(
                "UPDATE secrets SET host = ?, port = ?, header = ?, format = ?, env = ?, allow_private = ?, updated_at = ? WHERE id = ?",
                binding.host, binding.port, binding.header, binding.format, binding.environment, binding.allowPrivate ? 1 : 0, now, existing)
            secretID = existing
        } else {
            guard
                let inserted: Int64 = try value(
                    """
                    INSERT INTO secrets (tenant_id, name, host, port, header, format, env, allow_private, created_at, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
                    """, tenantID, name, binding.host, binding.port, binding.header, binding.format, binding.environment,
                    binding.allowPrivate ? 1 : 0, now, now)
            else { throw StoreError("the database returned no row for a new secret") }
            secretID = inserted
        }
        let current: Int? = try value("SELECT MAX(version) FROM secret_versions WHERE secret_id = ?", secretID)
        return (secretID, (current ?? 0) + 1)
    }

    /// Stores a sealed version as the active one and retires the older live ones.
    /// - Returns: the versions retired.
    public func insertSecretVersion(secretID: Int64, tenantID: Int64, name: String, version: Int, sealed: SealedKey) throws -> [Int] {
        let retired: [Int] = try rows(
            "SELECT version FROM secret_versions WHERE secret_id = ? AND state = 'active' ORDER BY version", secretID
        ).map { $0["version"] }
        try execute("UPDATE secret_versions SET state = 'retired' WHERE secret_id = ? AND state = 'active'", secretID)
        try execute(
            """
            INSERT INTO secret_versions (secret_id, tenant_id, label, version, state, ciphertext, nonce, tag, wrapped_dek, kek_id, fingerprint, created_at)
            VALUES (?, ?, ?, ?, 'active', ?, ?, ?, ?, ?, ?, ?)
            """, secretID, tenantID, SecretBinding.sealingLabel(name: name), version, Data(sealed.ciphertext), Data(sealed.nonce),
            Data(sealed.tag), sealed.wrappedDEK.map { Data($0) }, sealed.kekID, sealed.fingerprint, Timestamp.now())
        return retired
    }

    /// The tenant's secrets, each with its newest version, by name.
    public func secrets(tenantID: Int64) throws -> [SecretRecord] {
        try rows(
            """
            SELECT \(Self.secretColumns) FROM secrets s JOIN secret_versions v ON v.secret_id = s.id
            WHERE s.tenant_id = ? AND v.version = (SELECT MAX(version) FROM secret_versions WHERE secret_id = s.id)
            ORDER BY s.name
            """, tenantID
        ).map(SecretRecord.init(row:))
    }

    /// The tenant's secrets whose newest version is active: what its brokered sandboxes may use.
    public func activeSecrets(tenantID: Int64) throws -> [SecretRecord] {
        try secrets(tenantID: tenantID).filter(\.isActive)
    }

    /// Revokes every live version of the tenant's secret: the data keys are destroyed, the ciphertext zeroed.
    /// - Returns: the versions revoked (empty when the secret has none live).
    public func revokeSecret(tenantID: Int64, name: String) throws -> [Int] {
        guard let secretID: Int64 = try value("SELECT id FROM secrets WHERE tenant_id = ? AND name = ?", tenantID, name) else { return [] }
        let live: [Int] = try rows(
            "SELECT version FROM secret_versions WHERE secret_id = ? AND state != 'revoked' ORDER BY version", secretID
        ).map { $0["version"] }
        try execute(
            """
            UPDATE secret_versions SET state = 'revoked', wrapped_dek = NULL, ciphertext = \(dialect.zeros(sameLengthAs: "ciphertext")),
            revoked_at = ? WHERE secret_id = ? AND state != 'revoked'
            """, Timestamp.now(), secretID)
        try execute("UPDATE secrets SET updated_at = ? WHERE id = ?", Timestamp.now(), secretID)
        return live
    }

    /// Creates a secret's placeholder for a brokered sandbox: a proxy token bound to the secret by name, which the
    /// metering proxy never accepts (`proxyTokenOwner` answers nil for it).
    public func createSecretPlaceholder(tenantID: Int64, sandboxID: Int64, name: String) throws -> String {
        let token = TokenStore.generate(prefix: Self.secretPlaceholderPrefix)
        try execute(
            "INSERT INTO proxy_tokens (tenant_id, sandbox_id, token_hash, created_at, provider) VALUES (?, ?, ?, ?, ?)",
            tenantID, sandboxID, TokenStore.hash(token), Timestamp.now(), SecretBinding.sealingLabel(name: name)
        )
        return token
    }

    /// Secrets' placeholders start with this (an LLM key's carry its provider's key prefix).
    public static let secretPlaceholderPrefix = "keyhold-secret-"

    /// The live placeholders of a sandbox: SHA-256 of each, and what it stands for (a provider's name, or `secret:NAME`).
    public func placeholderHashes(sandboxID: Int64) throws -> [(hash: Data, label: String)] {
        try rows(
            "SELECT token_hash, provider FROM proxy_tokens WHERE sandbox_id = ? AND provider IS NOT NULL AND revoked_at IS NULL", sandboxID
        ).map { (hash: $0["token_hash"], label: $0["provider"]) }
    }
}
