import AsyncHTTPClient
import Foundation
import KeyholdTestTraits
import KeyholdTesting
import NIOCore
import NIOHTTP1
import Testing

/// The tenant console over HTTP against a real daemon: sign-in links, sessions, CSRF, headers, and a pasted key
/// that never comes back.
@Suite(.offCooperativePool, .serialized) struct ConsoleTests {
    /// A daemon serving the console on a free loopback port, with a fake provider that accepts `keys`.
    struct Console {
        let keyhold: KeyholdHarness
        let provider: FakeProvider
        let base: String
        let client: HTTPClient

        init(keys: Set<String>) async throws {
            provider = try await FakeProvider.start(configuration: .init(anthropicKeys: keys))
            keyhold = try KeyholdHarness()
            let port = try LoopbackPort.free()
            base = "http://127.0.0.1:\(port)"
            try keyhold.startDaemon(
                systemdBus: nil, extraArguments: ["--provider-base-url", "anthropic=\(provider.baseURL)", "--console", "127.0.0.1:\(port)"])
            var configuration = HTTPClient.Configuration()
            configuration.redirectConfiguration = .disallow
            client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        }

        func shutdown() async throws {
            try await client.shutdown()
            try await provider.stop()
        }

        /// A new one-time link for `tenant`, as the CLI prints it.
        func link(_ tenant: String, ttl: String = "15m") throws -> String {
            let result = try keyhold.cli(["tenant", "console-link", tenant, "--ttl", ttl])
            try #require(result.status == 0, "\(result.stderr)")
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        /// Spends a link as its page's button does: the page is opened (it sets its sign-in cookie and puts the same
        /// value in its form), then the form is posted from the console's own origin. `crossSite` posts the form as
        /// another site's page would: with the field, without the page's cookie.
        func spend(_ link: String, origin: String? = nil, crossSite: Bool = false) async throws -> Answer {
            let page = try await get(link)
            guard page.status == 200 else { return page }
            let nonce = try #require(Self.field("signin", in: page.body), "\(page.body)")
            let setCookie = try #require(page.headers.first(name: "set-cookie"))
            #expect(setCookie.hasPrefix("keyhold_signin=\(nonce);") && setCookie.contains("SameSite=Strict") && setCookie.contains("HttpOnly"))
            return try await send(
                "POST", link, cookie: crossSite ? nil : "keyhold_signin=\(nonce)", body: ConsoleTests.form([("signin", nonce)]),
                origin: origin ?? base)
        }

        static func field(_ name: String, in page: String) -> String? {
            guard let range = page.range(of: #"name="\#(name)" value=""#) else { return nil }
            return String(page[range.upperBound...].prefix { $0 != "\"" })
        }

        /// Signs in with a new link; returns the session cookie and the page's CSRF token.
        func signIn(_ tenant: String) async throws -> (cookie: String, csrf: String) {
            let opened = try await spend(try link(tenant))
            try #require(opened.status == 303)
            let setCookie = try #require(opened.headers.first(name: "set-cookie"))
            let cookie = String(setCookie.split(separator: ";")[0])
            let page = try await get(base + "/", cookie: cookie)
            try #require(page.status == 200, "\(page.body)")
            return (cookie, try #require(Self.csrf(in: page.body)))
        }

        static func csrf(in page: String) -> String? { field("csrf", in: page) }

        struct Answer {
            var status: Int
            var headers: HTTPHeaders
            var body: String
        }

        func get(_ url: String, cookie: String? = nil) async throws -> Answer { try await send("GET", url, cookie: cookie, body: nil) }

        func post(_ path: String, cookie: String?, form: [UInt8], origin: String? = nil) async throws -> Answer {
            try await send("POST", base + path, cookie: cookie, body: form, origin: origin)
        }

        func send(_ method: String, _ url: String, cookie: String?, body: [UInt8]?, origin: String? = nil) async throws -> Answer {
            var request = HTTPClientRequest(url: url)
            request.method = .init(rawValue: method)
            if let cookie { request.headers.add(name: "cookie", value: cookie) }
            if let origin { request.headers.add(name: "origin", value: origin) }
            if let body {
                request.headers.add(name: "content-type", value: "application/x-www-form-urlencoded")
                request.body = .bytes(ByteBuffer(bytes: body))
            }
            let response = try await client.execute(request, timeout: .seconds(60))
            let data = try await response.body.collect(upTo: 4 << 20)
            return Answer(status: Int(response.status.code), headers: response.headers, body: String(decoding: data.readableBytesView, as: UTF8.self))
        }
    }

    static func form(_ fields: [(String, String)]) -> [UInt8] {
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-._~"))
        return Array(
            fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&").utf8)
    }

    static func expectSecurityHeaders(_ answer: Console.Answer, _ what: String) {
        #expect(
            answer.headers.first(name: "content-security-policy")
                == "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            "\(what)")
        #expect(answer.headers.first(name: "x-content-type-options") == "nosniff", "\(what)")
        #expect(answer.headers.first(name: "referrer-policy") == "no-referrer", "\(what)")
        #expect(answer.headers.first(name: "cache-control") == "no-store", "\(what)")
    }

    @Test func aLinkSignsInOnceAndExpiredSpentOrForgedLinksAreRefused() async throws {
        let key = SandboxHarness.canary()
        let console = try await Console(keys: [key])
        defer { Task { try? await console.shutdown() } }
        #expect(try console.keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        #expect(try console.keyhold.cli(["key", "set", "acme", "anthropic", "--no-validate"], input: Array(key.utf8)).status == 0)

        let link = try console.link("acme")
        #expect(link.hasPrefix(console.base + "/link/kh_link_"), "\(link)")
        // Opening the link only asks (a mail scanner's fetch spends nothing); posted from another site, it is refused.
        for _ in 0..<2 {
            let asked = try await console.get(link)
            #expect(asked.status == 200 && asked.body.contains("Sign in to tenant acme") && asked.body.contains(#"id="continue""#), "\(asked.body)")
            #expect(
                asked.headers.first(name: "set-cookie")?.hasPrefix("keyhold_signin=") == true && !asked.body.contains(#"id="switching""#),
                "the page sets its own sign-in cookie, never a session")
            Self.expectSecurityHeaders(asked, "the sign-in page")
        }
        let otherOrigin = try await console.spend(link, origin: "https://evil.example")
        #expect(otherOrigin.status == 403 && otherOrigin.headers.first(name: "set-cookie") == nil, "\(otherOrigin.status)")
        // Another site's page that posts the form (its Origin hidden: "null") comes without the page's cookie.
        let crossSite = try await console.spend(link, origin: "null", crossSite: true)
        #expect(crossSite.status == 403 && crossSite.headers.first(name: "set-cookie") == nil, "\(crossSite.status)")
        let opened = try await console.spend(link)
        #expect(opened.status == 303)
        #expect(opened.headers.first(name: "location") == "/")
        let setCookie = try #require(opened.headers.first(name: "set-cookie"))
        #expect(setCookie.hasPrefix("keyhold_console=kh_session_"))
        #expect(setCookie.contains("HttpOnly") && setCookie.contains("SameSite=Strict") && setCookie.contains("Path=/"))
        #expect(!setCookie.contains("Secure"), "the console's URL is http: no Secure flag")
        Self.expectSecurityHeaders(opened, "the sign-in redirect")

        let cookie = String(setCookie.split(separator: ";")[0])
        let page = try await console.get(console.base + "/", cookie: cookie)
        #expect(page.status == 200)
        #expect(page.body.contains("anthropic") && page.body.contains("never checked"), "the key's health, never checked yet")
        #expect(!page.body.contains(key))
        Self.expectSecurityHeaders(page, "the console page")
        #expect(page.body.contains(#"<span class="tenant">acme</span>"#), "the page names its tenant")

        // A link for another tenant, opened in this signed-in browser, says it would switch tenants before it does.
        #expect(try console.keyhold.cli(["tenant", "create", "globex", "--plan", "byok"]).status == 0)
        let other = try await console.get(try console.link("globex"), cookie: cookie)
        #expect(other.status == 200 && other.body.contains(#"id="switching""#), "\(other.body)")
        #expect(other.body.contains("signed in to tenant <strong>acme</strong>") && other.body.contains("Sign in as globex"))
        #expect(try await console.get(console.base + "/", cookie: cookie).body.contains(#"<span class="tenant">acme</span>"#), "still acme's")

        let spent = try await console.get(link)
        #expect(spent.status == 410 && spent.body.contains("used already"), "\(spent.body)")
        #expect(try await console.spend(link).status == 410)
        #expect(spent.headers.first(name: "set-cookie") == nil)
        Self.expectSecurityHeaders(spent, "a spent link")
        let forged = try await console.get(console.base + "/link/kh_link_" + String(repeating: "A", count: 43))
        #expect(forged.status == 404 && forged.body.contains("not valid"), "\(forged.body)")

        let expiring = try console.link("acme", ttl: "60s")
        try console.keyhold.tamper("UPDATE console_links SET expires_at = '2000-01-01T00:00:00.000Z' WHERE used_at IS NULL")
        let expired = try await console.get(expiring)
        #expect(expired.status == 410 && expired.body.contains("expired"), "\(expired.body)")

        let signedOut = try await console.get(console.base + "/")
        #expect(signedOut.status == 401 && signedOut.body.contains("not signed in"))
        let bogus = try await console.get(console.base + "/", cookie: "keyhold_console=kh_session_forged")
        #expect(bogus.status == 401)
        for path in ["/static/console.css", "/static/console.js", "/nothing-here"] {
            Self.expectSecurityHeaders(try await console.get(console.base + path), path)
        }

        let audit = try console.keyhold.cli(["audit", "list", "--tenant", "acme"]).stdout
        #expect(audit.contains("console.link") && audit.contains("console.signin") && audit.contains("console:acme"), "\(audit)")
        let json = try console.keyhold.cli(["tenant", "console-link", "acme", "--ttl", "2h", "--json"])
        #expect(json.stdout.contains("\"url\"") && json.stdout.contains("\"expires_at\""), "\(json.stdout)")
        for ttl in ["10s", "2d", "soon"] {
            let refused = try console.keyhold.cli(["tenant", "console-link", "acme", "--ttl", ttl])
            #expect(refused.status != 0, "--ttl \(ttl)")
        }
        #expect(try console.keyhold.cli(["tenant", "console-link", "nobody"]).stderr.contains("no tenant"))
    }

    @Test func formsWithoutTheirCSRFTokenOrFromAnotherOriginAreRefused() async throws {
        let console = try await Console(keys: [])
        defer { Task { try? await console.shutdown() } }
        #expect(try console.keyhold.cli(["tenant", "create", "acme", "--plan", "managed"]).status == 0)
        let (cookie, csrf) = try await console.signIn("acme")
        let url = [("url", "https://hooks.example.com/alerts")]

        let noToken = try await console.post("/webhook", cookie: cookie, form: Self.form(url))
        #expect(noToken.status == 403 && noToken.body.contains("security token"), "\(noToken.body)")
        Self.expectSecurityHeaders(noToken, "a refused form")
        #expect(try await console.post("/webhook", cookie: cookie, form: Self.form(url + [("csrf", "wrong")])).status == 403)
        #expect(try await console.post("/webhook", cookie: nil, form: Self.form(url + [("csrf", csrf)])).status == 401)
        let otherOrigin = try await console.post("/webhook", cookie: cookie, form: Self.form(url + [("csrf", csrf)]), origin: "https://evil.example")
        #expect(otherOrigin.status == 403)
        #expect(!(try console.keyhold.cli(["audit", "list", "--tenant", "acme"]).stdout.contains("tenant.alert_webhook")), "nothing changed")

        let saved = try await console.post("/webhook", cookie: cookie, form: Self.form(url + [("csrf", csrf)]), origin: console.base)
        #expect(saved.status == 303)
        let page = try await console.get(console.base + "/?done=webhook", cookie: cookie)
        #expect(page.body.contains("hooks.example.com") && page.body.contains("was saved"))
        #expect(page.body.contains("id=\"usage\""), "a managed tenant sees its usage against its caps")
        #expect(try console.keyhold.cli(["audit", "list", "--tenant", "acme"]).stdout.contains("console:acme"))

        let signOut = try await console.post("/signout", cookie: cookie, form: Self.form([("csrf", csrf)]))
        #expect(signOut.status == 200 && (signOut.headers.first(name: "set-cookie") ?? "").contains("Max-Age=0"))
        #expect(try await console.get(console.base + "/", cookie: cookie).status == 401, "the session ended")
    }

    @Test func aPastedKeyIsNeverEchoedLoggedOrKept() async throws {
        let current = SandboxHarness.canary()
        let accepted = SandboxHarness.canary()
        let console = try await Console(keys: [current, accepted])
        defer { Task { try? await console.shutdown() } }
        #expect(try console.keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        #expect(try console.keyhold.cli(["key", "set", "acme", "anthropic", "--no-validate"], input: Array(current.utf8)).status == 0)
        let (cookie, csrf) = try await console.signIn("acme")
        var answers: [Console.Answer] = []

        // A key the provider refuses: the provider's one-line reason, never the key.
        let rejected = SandboxHarness.canary()
        let refused = try await console.post("/keys/anthropic/replace", cookie: cookie, form: Self.form([("csrf", csrf), ("key", rejected)]))
        #expect(refused.status == 400 && refused.body.contains("rejected the key"), "\(refused.body)")
        answers.append(refused)

        // Oversized, and not UTF-8.
        let huge = try await console.post(
            "/keys/anthropic/replace", cookie: cookie, form: Self.form([("csrf", csrf), ("key", rejected + String(repeating: "x", count: 20_000))]))
        #expect(huge.status == 413 && huge.body.contains("16 KiB"), "\(huge.status) \(huge.body)")
        answers.append(huge)
        let binary = try await console.post(
            "/keys/anthropic/replace", cookie: cookie, form: Array("csrf=\(csrf)&key=%FF%FE".utf8) + Array(rejected.utf8))
        #expect(binary.status == 400 && binary.body.contains("not UTF-8"), "\(binary.body)")
        answers.append(binary)

        // A good key: accepted, rotated (no agent runs, so at once), shown by fingerprint only.
        let replaced = try await console.post("/keys/anthropic/replace", cookie: cookie, form: Self.form([("csrf", csrf), ("key", accepted)]))
        #expect(replaced.status == 303, "\(replaced.body)")
        answers.append(replaced)
        var page = try await console.get(console.base + "/?done=rotating", cookie: cookie)
        for _ in 0..<100 where !page.body.contains("id=\"rotation-state\">done") {
            try await Task.sleep(for: .milliseconds(100))
            page = try await console.get(console.base + "/", cookie: cookie)
        }
        #expect(page.body.contains("id=\"rotation-state\">done"), "\(page.body)")
        answers.append(page)
        let keys = try console.keyhold.cli(["key", "list", "acme"]).stdout
        #expect(keys.contains(" 2        active"), "\(keys)")

        let revoked = try await console.post("/keys/anthropic/revoke", cookie: cookie, form: Self.form([("csrf", csrf)]))
        #expect(revoked.status == 303)
        answers.append(try await console.get(console.base + "/?done=revoked", cookie: cookie))

        for answer in answers {
            for secret in [current, accepted, rejected] {
                #expect(!answer.body.contains(secret) && !answer.headers.description.contains(secret), "a response echoed a key")
            }
        }
        #expect(console.keyhold.stopDaemon() == 0)
        for secret in [current, accepted, rejected] {
            #expect(!console.keyhold.daemonLog.contains(secret), "the daemon's log holds a pasted key")
            #expect(KeyholdHarness.files(under: console.keyhold.stateDirectory, containing: secret).isEmpty)
        }
    }

    @Test func aDaemonWithoutAConsoleSaysHowToServeOne() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        #expect(try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"]).status == 0)
        let result = try keyhold.cli(["tenant", "console-link", "acme"])
        #expect(result.status != 0 && result.stderr.contains("--console"), "\(result.stderr)")
        let public1 = try keyhold.cli(["serve", "--console", "0.0.0.0:8790"])
        #expect(public1.status != 0 && public1.stderr.contains("loopback"), "\(public1.stderr)")
        let badURL = try keyhold.cli(["serve", "--console", "127.0.0.1:8790", "--console-url", "ftp://x/y"])
        #expect(badURL.status != 0 && badURL.stderr.contains("--console-url"), "\(badURL.stderr)")
    }
}
