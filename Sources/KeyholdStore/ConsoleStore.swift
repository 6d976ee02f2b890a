import Foundation
import KeyholdCore

/// A signed-in console session: the tenant it is for and the token its forms carry.
public struct ConsoleSession: Sendable, Equatable {
    public var tenantID: Int64
    public var tenantName: String
    /// Every form the console renders for this session carries it; a post without it is refused.
    public var csrfToken: String
    public var expiresAt: String

    public init(tenantID: Int64, tenantName: String, csrfToken: String, expiresAt: String) {
        self.tenantID = tenantID
        self.tenantName = tenantName
        self.csrfToken = csrfToken
        self.expiresAt = expiresAt
    }
}

/// Why a console sign-in link was refused (each says what to do next on the page).
public enum ConsoleLinkRefusal: Error, Sendable, Equatable {
    /// No such link was ever made (a mistyped or forged URL).
    case unknown
    /// The link was used already: links are one-time.
    case spent
    /// The link's time ran out.
    case expired
}

/// The latest rotation of a tenant, with where it is and how it ended, for the console's progress view.
public struct RotationProgress: Sendable, Equatable {
    public var rotation: RotationRecord
    public var startedAt: String
    public var updatedAt: String
    /// The reason a failed rotation gives, if any.
    public var error: String?
}

extension StoreTransaction {
    /// Makes a one-time console sign-in link for a tenant; returns its token once (only its hash is kept).
    /// - Parameter seconds: how long the link stays usable.
    public func createConsoleLink(tenantID: Int64, actor: String, seconds: Int, now: Date = Date()) throws -> (token: String, expiresAt: String) {
        let token = TokenStore.generate(prefix: "kh_link_")
        let expiresAt = Timestamp.format(now.addingTimeInterval(Double(seconds)))
        try execute(
            "INSERT INTO console_links (token_hash, tenant_id, actor, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            TokenStore.hash(token), tenantID, actor, Timestamp.format(now), expiresAt
        )
        return (token, expiresAt)
    }

    /// The tenant a sign-in link is for, read without spending the link (the page that asks before signing in).
    public func consoleLinkTenant(_ token: String, now: Date = Date()) throws -> Result<String, ConsoleLinkRefusal> {
        guard
            let link = try row(
                "SELECT l.expires_at, l.used_at, t.name FROM console_links l JOIN tenants t ON t.id = l.tenant_id WHERE l.token_hash = ?",
                TokenStore.hash(token))
        else { return .failure(.unknown) }
        if (link["used_at"] as String?) != nil { return .failure(.spent) }
        if (link["expires_at"] as String) <= Timestamp.format(now) { return .failure(.expired) }
        return .success(link["name"])
    }

    /// Spends a sign-in link and opens a session for its tenant, in this one transaction: a second use finds it spent.
    /// - Returns: the session's cookie value (shown once) and the session, or why the link was refused.
    public func redeemConsoleLink(
        _ token: String, sessionSeconds: Int, now: Date = Date()
    ) throws -> Result<(cookie: String, session: ConsoleSession), ConsoleLinkRefusal> {
        let hash = TokenStore.hash(token)
        guard let link = try row("SELECT tenant_id, expires_at, used_at FROM console_links WHERE token_hash = ?", hash) else {
            return .failure(.unknown)
        }
        let stamp = Timestamp.format(now)
        if (link["used_at"] as String?) != nil { return .failure(.spent) }
        if (link["expires_at"] as String) <= stamp { return .failure(.expired) }
        // The condition on used_at makes the spend itself the check, should two redemptions race.
        guard try execute("UPDATE console_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", stamp, hash) == 1 else {
            return .failure(.spent)
        }
        let tenantID: Int64 = link["tenant_id"]
        guard let tenant = try tenant(id: tenantID) else { return .failure(.unknown) }
        let cookie = TokenStore.generate(prefix: "kh_session_")
        let csrf = TokenStore.generate(prefix: "")
        let expiresAt = Timestamp.format(now.addingTimeInterval(Double(sessionSeconds)))
        try execute(
            "INSERT INTO console_sessions (session_hash, tenant_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            TokenStore.hash(cookie), tenantID, csrf, stamp, expiresAt
        )
        return .success((cookie, ConsoleSession(tenantID: tenantID, tenantName: tenant.name, csrfToken: csrf, expiresAt: expiresAt)))
    }

    /// The live session a cookie names, or nil (unknown, expired, or its tenant gone).
    public func consoleSession(cookie: String, now: Date = Date()) throws -> ConsoleSession? {
        guard
            let row = try row(
                """
                SELECT s.tenant_id, s.csrf_token, s.expires_at, t.name FROM console_sessions s JOIN tenants t ON t.id = s.tenant_id
                WHERE s.session_hash = ? AND s.expires_at > ?
                """,
                TokenStore.hash(cookie), Timestamp.format(now)
            )
        else { return nil }
        return ConsoleSession(tenantID: row["tenant_id"], tenantName: row["name"], csrfToken: row["csrf_token"], expiresAt: row["expires_at"])
    }

    /// Ends a session (sign-out), and forgets every expired session and link while at it.
    public func endConsoleSession(cookie: String, now: Date = Date()) throws {
        let stamp = Timestamp.format(now)
        try execute("DELETE FROM console_sessions WHERE session_hash = ? OR expires_at <= ?", TokenStore.hash(cookie), stamp)
        try execute("DELETE FROM console_links WHERE expires_at <= ?", stamp)
    }

    /// The tenant's most recent rotation, if it ever had one.
    public func latestRotation(tenantID: Int64) throws -> RotationProgress? {
        guard let row = try row("SELECT * FROM rotations WHERE tenant_id = ? ORDER BY id DESC LIMIT 1", tenantID) else { return nil }
        return RotationProgress(rotation: RotationRecord(row: row), startedAt: row["started_at"], updatedAt: row["updated_at"], error: row["error"])
    }
}
