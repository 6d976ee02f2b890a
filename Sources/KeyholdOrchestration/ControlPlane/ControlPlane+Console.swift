import Foundation
public import KeyholdCore
public import KeyholdStore

extension ControlPlane {
    /// How long a console sign-in link lives unless asked otherwise (15 minutes), and the longest allowed (1 day).
    public static let consoleLinkDefaultSeconds = 900
    public static let consoleLinkMaximumSeconds = 86_400
    /// How long a signed-in console session lasts (8 hours).
    public static let consoleSessionSeconds = 8 * 3600

    /// The actor the audit log names for what a tenant does in its console.
    public static func consoleActor(_ tenant: String) -> String { "console:\(tenant)" }

    /// Makes a one-time sign-in link to the tenant console (audited `console.link`; the token itself is never recorded).
    /// - Parameters:
    ///   - baseURL: the console's public base URL (`--console-url`), e.g. `https://console.example.com`.
    ///   - seconds: how long the link is usable, 60 s to 1 day.
    public func createConsoleLink(tenant name: String, seconds: Int?, baseURL: String, actor: String) async throws -> AdminAPI.ConsoleLink {
        let seconds = seconds ?? Self.consoleLinkDefaultSeconds
        guard (60...Self.consoleLinkMaximumSeconds).contains(seconds) else {
            throw KeyholdError.invalidInput("a console link lives from 60 seconds to 1 day (86400 s); asked for \(seconds) s")
        }
        let base = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        return try await audited { tx in
            let tenant = try tx.tenant(named: name)
            let (token, expiresAt) = try tx.createConsoleLink(tenantID: tenant.id, actor: actor, seconds: seconds)
            let event = AuditEvent(actor: actor, action: .consoleLink, tenant: name, details: ["expires_at": expiresAt])
            return (AdminAPI.ConsoleLink(tenant: name, url: "\(base)/link/\(token)", expiresAt: expiresAt), [event])
        }
    }

    /// The tenant a sign-in link is for, without spending it.
    public func consoleLinkTenant(_ token: String) async throws -> Result<String, ConsoleLinkRefusal> {
        try await store.read { tx in try tx.consoleLinkTenant(token) }
    }

    /// Spends a sign-in link and opens a console session (audited `console.signin` when it succeeds).
    /// - Returns: the session cookie's value and the session, or why the link was refused.
    public func redeemConsoleLink(_ token: String) async throws -> Result<(cookie: String, session: ConsoleSession), ConsoleLinkRefusal> {
        try await audited { tx in
            let result = try tx.redeemConsoleLink(token, sessionSeconds: Self.consoleSessionSeconds)
            guard case .success(let opened) = result else { return (result, []) }
            let name = opened.session.tenantName
            return (result, [AuditEvent(actor: Self.consoleActor(name), action: .consoleSignin, tenant: name)])
        }
    }

    /// The live console session a cookie names, if any.
    public func consoleSession(cookie: String) async throws -> ConsoleSession? {
        try await store.read { tx in try tx.consoleSession(cookie: cookie) }
    }

    /// Ends a console session (sign-out).
    public func endConsoleSession(cookie: String) async throws {
        try await store.write { tx in try tx.endConsoleSession(cookie: cookie) }
    }

    /// The tenant's latest key rotation and how far it got.
    public func latestRotation(tenant name: String) async throws -> RotationProgress? {
        try await store.read { tx in try tx.latestRotation(tenantID: try tx.tenant(named: name).id) }
    }
}
