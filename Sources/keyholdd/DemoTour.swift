import Crypto
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore
import KeyholdVault

/// The demo's steps, each printed with the command a user would type, against a daemon already serving.
struct DemoTour {
    let global: GlobalOptions
    let arguments: [String]
    let keep: Bool
    let standInKey: String

    private var client: AdminClient { AdminClient(socketPath: global.socket) }
    private func step(_ title: String) { Keyholdd.Demo.step(title) }

    /// Runs a `keyhold` command, as a user would type it: the client program beside this one, against the demo's daemon.
    private func keyhold(_ arguments: [String]) async throws { try await SiblingProgram.client.run(arguments: arguments) }

    func run() async throws {
        step("4. keyhold plan list")
        try await keyhold(["plan", "list"] + arguments)

        step("5. printf %s \"$PLATFORM_KEY\" | keyhold platform set-key anthropic   (the key managed calls are made with)")
        _ = try await client.call(
            "PUT", "/v1/platform/keys/anthropic", body: AdminAPI.SetKey(key: standInKey, baseURL: nil, validate: false, skipShapeCheck: false),
            as: AdminAPI.Key.self)
        print("stored the platform's anthropic key (the stand-in's; not validated: no internet)")

        step(
            "6. keyhold tenant create acme --plan byok; ... globex --plan \(DemoPlans.managedPlan); ... initech --plan byok-brokered")
        for (name, plan, agent) in [
            ("acme", "byok", DemoAgents.byok), ("globex", DemoPlans.managedPlan, DemoAgents.managed),
            ("initech", "byok-brokered", DemoAgents.brokered),
        ] {
            _ = try await client.call(
                "POST", "/v1/tenants", body: AdminAPI.CreateTenant(name: name, plan: plan, agent: agent), as: AdminAPI.Tenant.self)
            print("created tenant \(name) on plan \(plan) (its agent: a shell script using curl)")
        }

        step("7. printf %s \"$KEY\" | keyhold key set acme anthropic --no-validate   (acme brings its own key)")
        let firstKey = Self.randomKey()
        let stored = try await setKey(firstKey)
        print("stored anthropic key version \(stored.version), fingerprint \(stored.fingerprint) (a keyed hash: the key itself is never shown)")
        // initech's key must be one the stand-in accepts: its broker really sends it there.
        let brokered = try await setKey(standInKey, tenant: "initech")
        print("printf %s \"$KEY\" | keyhold key set initech anthropic: stored version \(brokered.version), fingerprint \(brokered.fingerprint)")

        step("8. keyhold sandbox start acme; ... globex; ... initech   (key.inject audited and synced before any key is decrypted)")
        for tenant in Self.tenants { try await keyhold(["sandbox", "start"] + arguments + [tenant]) }

        try await managedPlanAtWork()
        try await byokPlanAtWork(firstKey: firstKey)
        try await brokeredPlanAtWork(key: standInKey)
        try await audit()

        step("14. keyhold sandbox stop acme globex initech; keyhold tenant delete acme globex initech --yes   (keys destroyed, agent state deleted)")
        for tenant in Self.tenants { try await keyhold(["sandbox", "stop"] + arguments + [tenant]) }
        if !keep {
            for tenant in Self.tenants { try await keyhold(["tenant", "delete"] + arguments + [tenant, "--yes"]) }
        }
    }

    /// The demo's tenants: one on each shipped kind of plan.
    static let tenants = ["acme", "globex", "initech"]

    /// The brokered agent: a placeholder in its environment, and a real call made with the key it never holds.
    private func brokeredPlanAtWork(key: String) async throws {
        step("12b. BYOK, brokered: initech's agent holds a placeholder; the broker inside its sandbox adds the key to each request")
        for line in try await agentLines("initech", until: "agent call") { print("initech: \(line)") }
        print("initech's agent holds a placeholder (its hash is the placeholder_fingerprint of its key.inject record below); its key")
        print("(sha256:\(Self.shortHash(key))) was decrypted in the daemon for that one request, sent to the provider")
        print("in x-api-key and wiped: the agent's environment, files and memory never held it. Its call was metered:")
        try await keyhold(["usage", "show"] + arguments + ["initech"])
    }

    /// The managed agent's calls through the metering proxy, metered, until the plan's cap refuses one.
    private func managedPlanAtWork() async throws {
        step("9. Managed: globex's agent calls $ANTHROPIC_BASE_URL (the metering proxy, inside its sandbox) with its proxy token")
        for line in try await agentLines("globex", until: "agent call 4") where line.contains("agent") { print("globex: \(line)") }
        print("calls 1-3 were forwarded with the platform's key and metered; call 4 was refused by the plan's requests_per_minute cap (3),")
        print("with the error shape the agent's own SDK expects from Anthropic")

        step("10. keyhold usage show globex")
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            let report = try await client.call("GET", "/v1/tenants/globex/usage", as: AdminAPI.UsageReport.self)
            if report.requestsThisMonth >= 3 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        try await keyhold(["usage", "show"] + arguments + ["globex"])
    }

    /// The BYOK agent's key, its refused egress, and a rotation watched from outside.
    private func byokPlanAtWork(firstKey: String) async throws {
        step("11. BYOK: acme's agent holds its own key, and reaches nothing its plan does not allow")
        for line in try await agentLines("acme", until: "agent tried http://169.254") { print("acme: \(line)") }
        print("expected for acme's key: sha256:\(Self.shortHash(firstKey))")
        try await keyhold(["sandbox", "status"] + arguments + ["acme"])

        step("12. printf %s \"$NEW_KEY\" | keyhold key rotate acme anthropic --no-validate   (a watcher polls acme's agents every 20 ms)")
        let watcher = Task { try await watchAgents("acme") }
        let newKey = Self.randomKey()
        let rotation = try await client.call(
            "POST", "/v1/tenants/acme/keys/anthropic/rotate",
            body: AdminAPI.SetKey(key: newKey, baseURL: nil, validate: false, skipShapeCheck: false), as: AdminAPI.Rotation.self)
        watcher.cancel()
        let (samples, empty) = try await watcher.value
        print(
            "rotated acme's anthropic key from version \(rotation.fromVersion.map(String.init) ?? "?") to \(rotation.toVersion.map(String.init) ?? "?"): "
                + "started \(rotation.newUnits.joined(separator: ", ")), then stopped \(rotation.oldUnits.joined(separator: ", "))")
        print(
            empty == 0
                ? "watcher: \(samples) samples during the rotation; an agent of acme was running in every one"
                : "watcher: \(samples) samples during the rotation; in \(empty) of them NO agent of acme was running")
        let lines = try await agentLines("acme", until: "agent holds")
        for line in lines where line.contains("agent holds") { print("acme (new agent): \(line)") }
        print("expected for the new key: sha256:\(Self.shortHash(newKey))")
    }

    private func audit() async throws {
        step("13. keyhold audit list --action key.inject; keyhold audit verify")
        try await Keyholdd.Demo.run(AuditCommand.List.self, arguments + ["--action", "key.inject"])
        try await Keyholdd.Demo.run(AuditCommand.Verify.self, arguments)

        step("13b. keyhold audit receipt acme > receipt.json; keyhold audit public-key > host.pem; keyhold audit verify-receipt (offline)")
        let receipt = try await client.call("GET", "/v1/tenants/acme/receipt", as: InjectionReceipt.self)
        let directory = (global.stateDir as NSString).deletingLastPathComponent
        try AdminJSON.encoder().encode(receipt).write(to: URL(fileURLWithPath: directory + "/receipt.json"))
        try global.state.loadSigningKey().publicKeyPEM.write(toFile: directory + "/host.pem", atomically: true, encoding: .utf8)
        try await Keyholdd.Demo.run(
            AuditCommand.VerifyReceipt.self, arguments + [directory + "/receipt.json", "--public-key", directory + "/host.pem"])
    }

    private func setKey(_ key: String, tenant: String = "acme") async throws -> AdminAPI.Key {
        try await client.call(
            "PUT", "/v1/tenants/\(tenant)/keys/anthropic", body: AdminAPI.SetKey(key: key, baseURL: nil, validate: false, skipShapeCheck: false),
            as: AdminAPI.Key.self)
    }

    /// Samples the tenant's sandboxes until cancelled: how many samples, and in how many no agent was active.
    private func watchAgents(_ tenant: String) async throws -> (samples: Int, empty: Int) {
        var samples = 0
        var empty = 0
        while !Task.isCancelled {
            let sandboxes: [AdminAPI.Sandbox]
            do {
                sandboxes = try await client.call("GET", "/v1/tenants/\(tenant)/sandbox", as: [AdminAPI.Sandbox].self)
            } catch {
                // Stopped in the middle of a sample: that sample does not count.
                if Task.isCancelled { break }
                throw error
            }
            samples += 1
            if !sandboxes.contains(where: { $0.systemdState?.hasPrefix("active") == true }) { empty += 1 }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return (samples, empty)
    }

    /// The newest sandbox's journal lines once one contains `marker` (bounded: 20 s).
    private func agentLines(_ tenant: String, until marker: String) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let logs = try await client.call("GET", "/v1/tenants/\(tenant)/sandbox/logs?lines=50", as: AdminAPI.Logs.self)
            let lines = logs.lines.compactMap { line in line.range(of: "agent ").map { String(line[$0.lowerBound...]) } }
            if lines.contains(where: { $0.contains(marker) }) { return lines }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw KeyholdError.failed("\(tenant)'s agent did not report '\(marker)' within 20 s: see `keyhold sandbox logs \(tenant)`")
    }

    static func randomKey() -> String {
        "sk-ant-demo-" + (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }

    static func shortHash(_ key: String) -> String {
        String(SHA256.hash(data: Array(key.utf8)).map { String(format: "%02x", $0) }.joined().prefix(16))
    }
}
