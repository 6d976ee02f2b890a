import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// Whether the browser test runs: when chromium and chromedriver are installed, or when `KEYHOLD_REQUIRE_BROWSER=1`
/// demands it (then a missing browser fails the test instead of skipping it).
enum TestBrowser {
    static var isRequired: Bool { ProcessInfo.processInfo.environment["KEYHOLD_REQUIRE_BROWSER"] == "1" }
    static var shouldRun: Bool { ChromeDriver.isInstalled || isRequired }
}

/// The tenant console in a real browser (Debian's headless Chromium through chromedriver) against a real daemon and
/// systemd: sign in with a link, replace a key while systemd signals every change of its agents, revoke, see usage.
///
/// Skipped when chromium or chromium-driver is missing, unless `KEYHOLD_REQUIRE_BROWSER=1` (CI), which makes it fail.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun && TestBrowser.shouldRun))
struct ConsoleBrowserTests {
    /// Where screenshots go: `.build/test-artefacts/` of the package.
    static var artefacts: String {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/test-artefacts").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func aTenantSignsInReplacesAKeyWithoutDowntimeRevokesItAndSeesUsage() async throws {
        try #require(
            ChromeDriver.isInstalled, "KEYHOLD_REQUIRE_BROWSER=1 but chromium or chromium-driver is missing: apt-get install chromium chromium-driver"
        )
        let oldKey = SandboxHarness.canary()
        let newKey = SandboxHarness.canary()
        let provider = try await FakeProvider.start(configuration: .init(anthropicKeys: [oldKey, newKey]))
        let port = try LoopbackPort.free()
        let base = "http://127.0.0.1:\(port)"
        let sandboxes = try SandboxHarness(extraArguments: [
            "--readiness-window-ms", "1000", "--console", "127.0.0.1:\(port)", "--provider-base-url", "anthropic=\(provider.baseURL)",
        ])
        let tenant = SandboxHarness.tenantName("web")
        try sandboxes.tenant(tenant, agent: RotationTests.agent)
        try sandboxes.setKey(tenant, oldKey)
        try #require(try sandboxes.start(tenant).status == 0)
        _ = try await sandboxes.waitForLog(tenant, containing: "hash=")

        let driver = try await ChromeDriver.start(log: sandboxes.keyhold.root + "/chromedriver.log")
        defer { driver.stop() }
        let browser = try await driver.session()
        do {
            // Sign in: the link's page names the tenant and asks; its button lands on the console, and the address bar
            // no longer holds the token.
            let link = try sandboxes.keyhold.cli(["tenant", "console-link", tenant]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            try await browser.navigate(link)
            try await browser.wait("the sign-in page") { try await browser.exists("#continue") }
            #expect(try await browser.text("#target") == tenant)
            try await browser.click("#continue")
            try await browser.wait("the console page") { try await browser.exists("#keys") }
            #expect(try await browser.currentURL() == base + "/")
            #expect(try await browser.text("#keys").contains("anthropic"))
            #expect(try await browser.text("#agent").contains("running"), "the agent's status")
            let cookie = try #require(try await browser.cookies().first { $0["name"] as? String == "keyhold_console" })
            #expect(cookie["httpOnly"] as? Bool == true && cookie["sameSite"] as? String == "Strict")

            // Replace the key while systemd's signals record every change of the tenant's units.
            let before = try sandboxes.activeUnits(tenant: tenant)
            let timeline = try UnitTimeline(tenant: tenant)
            try await browser.type(newKey, into: "#new-key-anthropic")
            try await browser.click("#replace-anthropic")
            try await browser.wait("the rotation to start") { try await browser.exists("#rotation") }
            var seen: Set<String> = []
            try await browser.wait("the rotation to finish", timeout: 60) {
                if let state = try? await browser.text("#rotation-state") { seen.insert(state) }
                return seen.contains("done")
            }
            try Data(try await browser.screenshot()).write(to: URL(fileURLWithPath: Self.artefacts + "/console-rotation.png"))
            let old = try #require(before.keys.first)
            #expect(timeline.waitUntilInactive(old), "systemd signalled the old unit's stop")
            let counts = timeline.activeCounts(from: Set(before.keys))
            #expect(counts.allSatisfy { $0 > 0 }, "after every change at least one agent was active: \(counts)")
            #expect(counts.contains(2), "old and new ran side by side: \(counts)")
            #expect(seen.contains("running") || seen.contains("done"))
            let after = try sandboxes.activeUnits(tenant: tenant)
            #expect(after.count == 1 && Set(after.keys).isDisjoint(with: before.keys), "a new agent replaced the old one")
            let line = try await sandboxes.waitForLog(tenant, containing: "hash=" + (try SandboxHarness.sha256(newKey)))
            #expect(!line.isEmpty, "the new agent holds the new key")
            #expect(try await browser.property("value", of: "#new-key-anthropic") == "", "the pasted key is not kept in the page")
            let source = try await browser.source()
            #expect(!source.contains(newKey) && !source.contains(oldKey))
            #expect(try await browser.text("#injections").contains("anthropic v2"), "the injection history shows the new version")

            // Revoke (the page asks first).
            try await browser.click("#revoke-anthropic")
            try await browser.acceptAlert()
            try await browser.wait("the revocation") { try await browser.text("#notice").contains("revoked") }
            #expect(try sandboxes.activeUnits(tenant: tenant).isEmpty, "revoking the only key stops the agent")
            #expect(try await browser.exists("#agent-idle"))

            // A managed tenant sees its usage against its caps, and a chart of the month.
            let managed = SandboxHarness.tenantName("webm")
            try sandboxes.tenant(managed, plan: "managed", agent: "/bin/sleep infinity")
            let store = try sandboxes.keyhold.openStore()
            try await store.write { tx in
                let id = try tx.tenant(named: managed).id
                let now = Timestamp.now()
                try tx.insertUsage(
                    (0..<5).map { index in
                        UsageRow(
                            requestID: "web-\(UUID().uuidString)", tenantID: id, sandboxID: nil, model: "gpt-4o-mini",
                            inputTokens: 1000 * (index + 1),
                            outputTokens: 500, cachedTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, costPicoUSD: 2_000_000_000, status: 200,
                            charged: .usage, latencyMs: 10, createdAt: now)
                    })
            }
            try await browser.navigate(
                try sandboxes.keyhold.cli(["tenant", "console-link", managed]).stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            // Still signed in to the first tenant, the browser is told that the link switches tenants.
            try await browser.wait("the sign-in page") { try await browser.exists("#continue") }
            #expect(try await browser.text("#switching").contains(tenant), "the page names the tenant it would leave")
            try await browser.click("#continue")
            try await browser.wait("the usage section") { try await browser.exists("#usage") }
            let usage = try await browser.text("#usage")
            #expect(usage.contains("5 requests") && usage.contains("Tokens this month"), "\(usage)")
            #expect(try await browser.exists("#usage-chart rect[height]"))
            try Data(try await browser.screenshot()).write(to: URL(fileURLWithPath: Self.artefacts + "/console-usage.png"))
            print("console screenshots: \(Self.artefacts)/console-rotation.png, \(Self.artefacts)/console-usage.png")
        } catch {
            try? Data(try await browser.screenshot()).write(to: URL(fileURLWithPath: Self.artefacts + "/console-failure.png"))
            try? await browser.delete()
            try await provider.stop()
            throw error
        }
        try await browser.delete()
        try await provider.stop()
        #expect(!sandboxes.keyhold.daemonLog.contains(newKey))
    }
}
