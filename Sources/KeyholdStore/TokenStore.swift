import Crypto
import Foundation
import KeyholdCore

/// Bearer tokens (admin API tokens and per-sandbox proxy tokens): random, shown once, stored as SHA-256.
public enum TokenStore {
    /// The prefix of a tenant token's value.
    public static let tenantTokenPrefix = "kh_tenant_"

    /// A new random token with a readable prefix (`kh_admin_`, `kh_proxy_`): 256 random bits, base64url.
    public static func generate(prefix: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let encoded = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        return prefix + encoded.replacingOccurrences(of: "=", with: "")
    }

    public static func hash(_ token: String) -> Data { Data(SHA256.hash(data: Array(token.utf8))) }
}

extension StoreTransaction {
    /// Creates an API token; returns it once. With `tenantID` it is a tenant token (`kh_tenant_`), which acts on that
    /// tenant only; without, an admin token (`kh_admin_`).
    public func createAdminToken(name: String, tenantID: Int64? = nil) throws -> (token: String, createdAt: String) {
        guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", options: .regularExpression) != nil else {
            throw KeyholdError.invalidInput("token name '\(name.prefix(40))' must be 1–63 letters, digits, dots, hyphens or underscores")
        }
        if try row("SELECT 1 FROM admin_tokens WHERE name = ? AND revoked_at IS NULL", name) != nil {
            throw KeyholdError.conflict("a token named '\(name)' exists: revoke it first or pick another name")
        }
        try execute("DELETE FROM admin_tokens WHERE name = ? AND revoked_at IS NOT NULL", name)
        let token = TokenStore.generate(prefix: tenantID == nil ? "kh_admin_" : TokenStore.tenantTokenPrefix)
        let now = Timestamp.now()
        try execute(
            "INSERT INTO admin_tokens (name, token_hash, created_at, tenant_id) VALUES (?, ?, ?, ?)", name, TokenStore.hash(token), now,
            tenantID)
        return (token, now)
    }

    /// The live API token with this value, if any: its name, and the tenant it is bound to (nil for an admin token).
    public func apiToken(for token: String) throws -> APIToken? {
        try row(
            """
            SELECT admin_tokens.name, admin_tokens.created_at, tenants.name AS tenant FROM admin_tokens
            LEFT JOIN tenants ON tenants.id = admin_tokens.tenant_id
            WHERE admin_tokens.token_hash = ? AND admin_tokens.revoked_at IS NULL
            """, TokenStore.hash(token)
        ).map(APIToken.init(row:))
    }

    /// The name of the live admin token with this value, if any.
    public func adminTokenName(for token: String) throws -> String? { try apiToken(for: token)?.name }

    /// The live API tokens, by name.
    public func adminTokens() throws -> [APIToken] {
        try rows(
            """
            SELECT admin_tokens.name, admin_tokens.created_at, tenants.name AS tenant FROM admin_tokens
            LEFT JOIN tenants ON tenants.id = admin_tokens.tenant_id
            WHERE admin_tokens.revoked_at IS NULL ORDER BY admin_tokens.name
            """
        ).map(APIToken.init(row:))
    }

    public func revokeAdminToken(name: String) throws {
        let revoked = try execute("UPDATE admin_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL", Timestamp.now(), name)
        guard revoked > 0 else { throw KeyholdError.notFound("no live admin token named '\(name.prefix(40))'") }
    }

    /// Creates a proxy token bound to one tenant and one sandbox; returns it once.
    public func createProxyToken(tenantID: Int64, sandboxID: Int64) throws -> String {
        let token = TokenStore.generate(prefix: "kh_proxy_")
        try execute(
            "INSERT INTO proxy_tokens (tenant_id, sandbox_id, token_hash, created_at) VALUES (?, ?, ?, ?)",
            tenantID, sandboxID, TokenStore.hash(token), Timestamp.now()
        )
        return token
    }

    /// Creates a brokered key's placeholder: a proxy token bound to one sandbox and to the tenant's key of `provider`
    /// (whichever version is active when a request uses it); returns it once. Revoked with the sandbox's tokens.
    public func createPlaceholder(tenantID: Int64, sandboxID: Int64, provider: Provider, prefix: String) throws -> String {
        let token = TokenStore.generate(prefix: prefix)
        try execute(
            "INSERT INTO proxy_tokens (tenant_id, sandbox_id, token_hash, created_at, provider) VALUES (?, ?, ?, ?, ?)",
            tenantID, sandboxID, TokenStore.hash(token), Timestamp.now(), provider.rawValue
        )
        return token
    }

    /// Revokes the proxy tokens and placeholders of a sandbox (when it stops), and forgets its certificate authority.
    public func revokeProxyTokens(sandboxID: Int64) throws {
        try execute(
            "UPDATE proxy_tokens SET revoked_at = ? WHERE sandbox_id = ? AND revoked_at IS NULL", Timestamp.now(), sandboxID
        )
        try execute("DELETE FROM sandbox_authorities WHERE sandbox_id = ?", sandboxID)
    }

    /// Whether a sandbox has live placeholders (it was started with brokered keys).
    public func hasPlaceholders(sandboxID: Int64) throws -> Bool {
        try row("SELECT 1 AS one FROM proxy_tokens WHERE sandbox_id = ? AND provider IS NOT NULL AND revoked_at IS NULL", sandboxID) != nil
    }

    /// The tenant and sandbox a live proxy token belongs to, and for a placeholder the provider of its key.
    public func proxyTokenOwner(_ token: String) throws -> (tenantID: Int64, sandboxID: Int64?, provider: Provider?)? {
        guard
            let row = try row(
                "SELECT tenant_id, sandbox_id, provider FROM proxy_tokens WHERE token_hash = ? AND revoked_at IS NULL",
                TokenStore.hash(token)
            )
        else { return nil }
        let label: String? = row["provider"]
        guard let label else { return (row["tenant_id"], row["sandbox_id"], nil) }
        // A secret's placeholder (`secret:NAME`) is no key of any provider: the proxy never takes it.
        guard let provider = Provider(rawValue: label) else { return nil }
        return (row["tenant_id"], row["sandbox_id"], provider)
    }
}

/// A live API token: an admin token, or a tenant token bound to one tenant.
public struct APIToken: Sendable, Equatable {
    public var name: String
    public var createdAt: String
    /// The tenant a tenant token acts on; nil for an admin token.
    public var tenant: String?

    init(row: StoreRow) {
        name = row["name"]
        createdAt = row["created_at"]
        tenant = row["tenant"]
    }
}
