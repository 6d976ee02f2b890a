import Foundation
import HTTPTypes
import Hummingbird
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore
import Logging
import NIOCore

/// The console's pages and forms. Every form posts its session's CSRF token; a pasted key goes only into the rotation.
struct ConsoleRoutes: Sendable {
    let plane: ControlPlane
    let pages: ConsolePages
    let cookies: ConsoleCookies
    /// The console's public origin (`https://console.example.com`): a form posted from another origin is refused.
    let origin: String
    let logger: Logger

    func register(on router: Router<ConsoleContext>) {
        router.get("/static/console.css") { _, _ in ConsoleResponse.body(ConsoleTemplates.css, type: "text/css; charset=utf-8") }
        router.get("/static/console.js") { _, _ in ConsoleResponse.body(ConsoleTemplates.script, type: "text/javascript; charset=utf-8") }
        // A link's GET only asks: mail scanners and link previews fetch links, and a link spent by them would be lost (or,
        // opened in a signed-in browser, would silently swap its tenant). The page's POST spends it.
        router.get("/link/{token}") { _, context in try await askToSignIn(token: context.parameters.get("token") ?? "", context: context) }
        router.post("/link/{token}") { request, context in
            // A sign-in posted from another site would sign the visitor into a tenant of that site's choosing: the form
            // must carry the value of the cookie its page set, which another site's post comes without.
            if let sent = request.headers[.origin], sent != origin, sent != "null" { throw ConsolePageError.missingCSRF }
            let form = try await ConsoleForm.read(request)
            guard let expected = cookies.signIn(in: request.headers), let sent = form["signin"], Self.constantTimeEqual(sent, expected) else {
                throw ConsolePageError.missingCSRF
            }
            return try await signIn(token: context.parameters.get("token") ?? "")
        }
        router.get("/") { request, context in
            let session = try Self.requireSession(context)
            let notice = request.uri.queryParameters.get("done").flatMap(Self.notice(for:))
            return ConsoleResponse.html(try await ConsoleDashboard.render(plane: plane, pages: pages, session: session, notice: notice))
        }
        router.post("/keys/{provider}/replace") { request, context in
            try await action(request, context) { session, form in
                try await replaceKey(session: session, provider: try Self.provider(context), form: form)
            }
        }
        router.post("/keys/{provider}/revoke") { request, context in
            try await action(request, context) { session, _ in
                let provider = try Self.provider(context)
                _ = try await plane.revokeKey(
                    tenant: session.tenantName, provider: provider, version: nil, actor: ControlPlane.consoleActor(session.tenantName))
                return ConsoleResponse.redirect(to: "/?done=revoked")
            }
        }
        router.post("/keys/{provider}/validate") { request, context in
            try await action(request, context) { session, _ in
                let result = try await plane.validateKey(
                    tenant: session.tenantName, provider: try Self.provider(context), actor: ControlPlane.consoleActor(session.tenantName))
                return ConsoleResponse.redirect(to: result.valid ? "/?done=valid" : "/?done=invalid")
            }
        }
        router.post("/webhook") { request, context in
            try await action(request, context) { session, form in
                let url = (form["url"] ?? "").trimmingCharacters(in: .whitespaces)
                _ = try await plane.setAlertWebhook(
                    session.tenantName, url: url.isEmpty ? nil : url, actor: ControlPlane.consoleActor(session.tenantName))
                return ConsoleResponse.redirect(to: "/?done=webhook")
            }
        }
        router.post("/signout") { request, context in
            try await action(request, context) { _, _ in
                if let cookie = context.cookie { try await plane.endConsoleSession(cookie: cookie) }
                var response = ConsoleResponse.html(pages.message(title: "Signed out", text: "You are signed out. Close this window."))
                response.headers[.setCookie] = cookies.clearing
                return response
            }
        }
    }

    /// The page a link opens: whose console it signs in to, and, when this browser is signed in to another tenant,
    /// that continuing switches tenants. Nothing is spent until its button posts.
    func askToSignIn(token: String, context: ConsoleContext) async throws -> Response {
        switch try await plane.consoleLinkTenant(token) {
        case .success(let tenant):
            let current = context.session?.tenantName
            let nonce = TokenStore.generate(prefix: "")
            var response = ConsoleResponse.html(
                pages.signIn(tenant: tenant, action: "/link/\(token)", nonce: nonce, signedInAs: current == tenant ? nil : current))
            response.headers[.setCookie] = cookies.settingSignIn(nonce)
            return response
        case .failure(let refusal): return refused(refusal)
        }
    }

    /// Opens a session from a one-time link, then sends the browser to the console without the token in its address bar.
    func signIn(token: String) async throws -> Response {
        switch try await plane.redeemConsoleLink(token) {
        case .success(let opened):
            return ConsoleResponse.redirect(to: "/", cookie: cookies.setting(opened.cookie, maxAge: ControlPlane.consoleSessionSeconds))
        case .failure(let refusal): return refused(refusal)
        }
    }

    /// The page of a link that cannot sign in.
    private func refused(_ refusal: ConsoleLinkRefusal) -> Response {
        let (status, title, text): (HTTPResponse.Status, String, String) =
            switch refusal {
            case .unknown:
                (
                    .notFound, "Unknown sign-in link",
                    "This sign-in link is not valid. Check that it was copied whole, or ask your hosting provider for a new one."
                )
            case .spent:
                (.gone, "Link already used", "This sign-in link was used already: each link works once. Ask your hosting provider for a new one.")
            case .expired: (.gone, "Link expired", "This sign-in link has expired. Ask your hosting provider for a new one.")
            }
        return ConsoleResponse.html(pages.message(title: title, text: text), status: status)
    }

    /// A form post: signed in, from this console, with the session's CSRF token; a refusal re-renders the console with it.
    func action(
        _ request: Request, _ context: ConsoleContext, _ body: (ConsoleSession, ConsoleForm) async throws -> Response
    ) async throws -> Response {
        let session = try Self.requireSession(context)
        if let sent = request.headers[.origin], sent != origin, sent != "null" {
            throw ConsolePageError.missingCSRF
        }
        let form: ConsoleForm
        do {
            form = try await ConsoleForm.read(request)
        } catch let error as ConsolePageError {
            return try await refusal(error.status, error.message, session: session)
        }
        guard let token = form["csrf"], Self.constantTimeEqual(token, session.csrfToken) else { throw ConsolePageError.missingCSRF }
        do {
            return try await body(session, form)
        } catch let error as ConsolePageError {
            return try await refusal(error.status, error.message, session: session)
        } catch let error as KeyholdError {
            let (status, _, _) = ErrorMiddleware.classify(error)
            return try await refusal(status, Self.oneLine(error.message, hiding: form["key"]), session: session)
        }
    }

    /// The console again, with why the action was refused.
    private func refusal(_ status: HTTPResponse.Status, _ message: String, session: ConsoleSession) async throws -> Response {
        ConsoleResponse.html(try await ConsoleDashboard.render(plane: plane, pages: pages, session: session, error: message), status: status)
    }

    /// Validates the pasted key and starts the blue/green rotation; answers once the rotation is under way (the page
    /// then follows its progress), or with the reason the key was refused.
    func replaceKey(session: ConsoleSession, provider: String, form: ConsoleForm) async throws -> Response {
        let pasted = (form["key"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !pasted.isEmpty else { throw ConsolePageError(.badRequest, "Paste the new key first; nothing was changed.") }
        let tenant = session.tenantName
        let before = try await plane.latestRotation(tenant: tenant)?.rotation.id ?? 0
        let body = AdminAPI.SetKey(key: pasted, baseURL: nil, validate: true, skipShapeCheck: false)
        let plane = self.plane
        let logger = self.logger
        // The rotation outlives this request: the page follows it through /rotation.json.
        let rotation = Task {
            do {
                _ = try await plane.rotateKey(tenant: tenant, provider: provider, body, actor: ControlPlane.consoleActor(tenant))
                return Result<Void, KeyholdError>.success(())
            } catch let error as KeyholdError {
                return .failure(error)
            } catch {
                logger.error("console: the rotation of \(tenant)'s \(provider) key failed: \(ErrorMiddleware.classify(error).2)")
                return .failure(KeyholdError.failed("the rotation failed; your agent keeps its current key. Try again in a minute."))
            }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let started = try await plane.latestRotation(tenant: tenant), started.rotation.id > before {
                return ConsoleResponse.redirect(to: "/?done=rotating")
            }
            if let finished = await TimeLimit.first(within: .milliseconds(25), { await rotation.value }) {
                if case .failure(let error) = finished { throw KeyholdError(error.code, Self.oneLine(error.message, hiding: pasted)) }
                return ConsoleResponse.redirect(to: "/?done=rotating")
            }
        }
        return ConsoleResponse.redirect(to: "/?done=rotating")
    }

    static func requireSession(_ context: ConsoleContext) throws -> ConsoleSession {
        guard let session = context.session else { throw ConsolePageError.signedOut }
        return session
    }

    static func provider(_ context: ConsoleContext) throws -> String {
        guard let provider = context.parameters.get("provider"), Provider(rawValue: provider) != nil else {
            throw ConsolePageError(.notFound, "There is no such provider.")
        }
        return provider
    }

    static func notice(for code: String) -> String? {
        switch code {
        case "rotating": "The new key was accepted. Your agent is moving to it; the current one keeps running until the new one is ready."
        case "revoked": "The key was revoked and destroyed."
        case "valid": "The provider accepted the key."
        case "invalid": "The provider did not accept the key: see its health below."
        case "webhook": "The alert webhook was saved."
        default: nil
        }
    }

    /// The first line of a message, at most 300 characters, with the pasted key (should a provider echo it) blanked out.
    static func oneLine(_ message: String, hiding secret: String?) -> String {
        var text = String(message.split(whereSeparator: \.isNewline).first ?? "")
        if let secret = secret?.trimmingCharacters(in: .whitespacesAndNewlines), secret.count >= 4 {
            text = text.replacingOccurrences(of: secret, with: "[the pasted key]")
        }
        return String(text.prefix(300))
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
