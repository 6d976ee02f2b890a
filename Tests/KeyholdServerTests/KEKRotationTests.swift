import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdStore
import KeyholdTestTraits
import KeyholdTesting
import KeyholdVault
import Testing

/// `keyhold kek rotate | status | retire` on 10,000 real sealed keys, while sandboxes start.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct KEKRotationTests {
    static let bulkKeys = 10_000

    /// Seals `bulkKeys` key versions for one tenant straight into the database (the daemon stopped).
    static func seed(_ keyhold: KeyholdHarness) throws {
        let state = StateDirectory(path: keyhold.stateDirectory)
        let vault = try state.loadVault()
        let store = try keyhold.openStore()
        try store.writeNow { tx in
            let tenant = try tx.insertTenant(name: try TenantName("bulk"), plan: "byok", agent: ["/bin/true"])
            for version in 1...bulkKeys {
                let sealed = try vault.seal(
                    SecretBytes(Array("sk-bulk-\(version)".utf8)), binding: KeyBinding(tenantID: tenant.id, provider: "openai", version: version)
                )
                _ = try tx.insertKeyVersion(
                    tenantID: tenant.id, provider: .openai, version: version, sealed: sealed, baseURL: nil,
                    state: version == bulkKeys ? .active : .retired
                )
            }
        }
    }

    /// Decrypts every stored key with `vault`; returns how many opened to their expected value.
    static func openAll(_ keyhold: KeyholdHarness, with vault: Vault) throws -> Int {
        let store = try Store.openReadOnly(location: keyhold.storeLocation)
        let keys = try store.readNow { tx in
            try tx.allTenants().flatMap { try tx.keyVersions(tenantID: $0.id) }.filter { $0.sealed.wrappedDEK != nil }
        }
        var opened = 0
        for key in keys {
            let plain = try vault.open(key.sealed, binding: key.binding)
            if key.provider != .openai || plain.withBytes({ Array($0) }) == Array("sk-bulk-\(key.version)".utf8) { opened += 1 }
        }
        return opened
    }

    static func status(_ keyhold: KeyholdHarness) throws -> [[String: Any]] {
        let json = try keyhold.cli(["kek", "status", "--json"]).stdout
        return (try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
    }

    @Test func tenThousandKeysAreRewrappedWhileSandboxesStartAndTheOldKEKIsNotNeededAfterRetire() throws {
        let sandboxes = try SandboxHarness()
        sandboxes.keyhold.stopDaemon()
        try Self.seed(sandboxes.keyhold)
        try sandboxes.restartDaemon()
        let tenants = (0..<3).map { _ in SandboxHarness.tenantName("kek") }
        for tenant in tenants {
            try sandboxes.tenant(tenant, agent: "/bin/sleep infinity")
            try sandboxes.setKey(tenant, SandboxHarness.canary())
        }
        let oldKEK = try KeyEncryptionKey.load(path: sandboxes.keyhold.stateDirectory + "/kek").id

        let rotation = Process()
        rotation.executableURL = URL(fileURLWithPath: BuildProducts.keyhold)
        rotation.arguments = ["kek", "rotate"] + sandboxes.keyhold.globalArguments
        let output = Pipe()
        rotation.standardOutput = output
        try rotation.run()
        for tenant in tenants { #expect(try sandboxes.start(tenant).status == 0, "a sandbox starts during the rewrap") }
        rotation.waitUntilExit()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(rotation.terminationStatus == 0, "\(printed)")
        #expect(printed.contains("rewrapped \(Self.bulkKeys + 3) data keys"), "\(printed)")

        let status = try Self.status(sandboxes.keyhold)
        #expect(status.first { $0["id"] as? String == oldKEK }?["wrapped_keys"] as? Int == 0)
        #expect(status.first { $0["current"] as? Bool == true }?["wrapped_keys"] as? Int == Self.bulkKeys + 3)
        #expect(try sandboxes.keyhold.cli(["audit", "verify"]).status == 0)

        let retire = try sandboxes.keyhold.cli(["kek", "retire"])
        #expect(retire.status == 0 && retire.stdout.contains(oldKEK), "\(retire.stderr)")
        #expect(!FileManager.default.fileExists(atPath: sandboxes.keyhold.stateDirectory + "/kek.d/\(oldKEK)"))
        let current = try KeyEncryptionKey.load(path: sandboxes.keyhold.stateDirectory + "/kek")
        #expect(current.id != oldKEK)
        #expect(try Self.openAll(sandboxes.keyhold, with: Vault(kek: current)) == Self.bulkKeys + 3, "the new KEK alone opens every key")
        for tenant in tenants { #expect(try sandboxes.activeUnits(tenant: tenant).count == 1) }
        let audit = try sandboxes.keyhold.cli(["audit", "list", "--action", "kek"]).stdout
        #expect(audit.contains("kek.rotate") && audit.contains("kek.retire"))
    }

    @Test func aRewrapKilledMidwayResumesAfterRestart() throws {
        let sandboxes = try SandboxHarness()
        sandboxes.keyhold.stopDaemon()
        try Self.seed(sandboxes.keyhold)
        try sandboxes.restartDaemon(environment: ["KEYHOLD_FAULT": "kek.rewrap-batch"])
        #expect(try sandboxes.keyhold.cli(["kek", "rotate"]).status != 0)
        #expect(sandboxes.keyhold.waitForDaemonExit())
        // Killed after one batch: the keys are split between both KEKs, and both files are on disk.
        let state = StateDirectory(path: sandboxes.keyhold.stateDirectory)
        let split = try state.loadVault()
        #expect(split.previous.count == 1)
        #expect(try Self.openAll(sandboxes.keyhold, with: split) == Self.bulkKeys)

        try sandboxes.restartDaemon()
        let deadline = Date().addingTimeInterval(60)
        var remaining = -1
        while Date() < deadline {
            remaining = try Self.status(sandboxes.keyhold).filter { $0["current"] as? Bool == false }.compactMap { $0["wrapped_keys"] as? Int }
                .reduce(0, +)
            if remaining == 0 { break }
            usleep(100_000)
        }
        #expect(remaining == 0, "the restarted daemon finished the rewrap by itself")
        #expect(try sandboxes.keyhold.cli(["kek", "retire"]).status == 0)
        #expect(try Self.openAll(sandboxes.keyhold, with: try state.loadVault()) == Self.bulkKeys)
        #expect(try sandboxes.keyhold.cli(["audit", "verify"]).status == 0)
    }

    @Test func aMissingPreviousKEKStillNeededIsRefusedAtStart() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        #expect(try keyhold.cli(["kek", "retire"]).stdout.contains("no previous KEK"))
        try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"])
        try keyhold.cli(["key", "set", "acme", "openai", "--no-validate"], input: Array("sk-test-retire".utf8))
        keyhold.stopDaemon()
        // A half-done rotation (new KEK installed, the key still under the old one), then the old KEK file lost.
        let state = StateDirectory(path: keyhold.stateDirectory)
        let old = try state.loadVault().kek.id
        _ = try state.installNewKEK(replacing: try state.loadVault())
        try FileManager.default.removeItem(atPath: state.previousKEKDirectory + "/" + old)
        #expect(throws: HarnessError.self) { try keyhold.startDaemon(systemdBus: nil) }
        #expect(keyhold.daemonLog.contains("is not the one the stored keys were sealed with (id \(old))"))
    }
}
