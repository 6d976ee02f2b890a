import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// `keyhold audit verify | checkpoint` on a real database, with and without the daemon.
@Suite(.offCooperativePool, .serialized)
struct AuditCommandTests {
    /// An installation with a few audited actions, daemon stopped.
    static func installation() throws -> KeyholdHarness {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        for name in ["acme", "globex", "initech"] { try keyhold.cli(["tenant", "create", name, "--plan", "byok"]) }
        try keyhold.cli(["tenant", "suspend", "globex"])
        keyhold.stopDaemon()
        return keyhold
    }

    static func tamper(_ keyhold: KeyholdHarness, _ sql: String) throws {
        try keyhold.tamper(sql)
    }

    @Test func verifyNamesTheFirstChangedDeletedOrReorderedRecord() throws {
        for (sql, seq) in [
            ("UPDATE audit SET tenant = 'evil' WHERE seq = 2", 2),
            ("DELETE FROM audit WHERE seq = 3", 3),
            ("UPDATE audit SET seq = -1 WHERE seq = 1; UPDATE audit SET seq = 1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = -1", 1),
        ] {
            let keyhold = try Self.installation()
            #expect(try keyhold.cli(["audit", "verify"]).status == 0)
            try Self.tamper(keyhold, sql)
            let verify = try keyhold.cli(["audit", "verify"])
            #expect(verify.status == 1)
            #expect(verify.stderr.contains("FAILED at record \(seq):"), "\(sql): \(verify.stderr)")
        }
    }

    @Test func aCheckpointDetectsTruncationAndRewrites() throws {
        let keyhold = try Self.installation()
        let checkpoint = try keyhold.cli(["audit", "checkpoint"])
        #expect(checkpoint.status == 0)
        let path = keyhold.root + "/checkpoint.json"
        try checkpoint.stdout.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try keyhold.cli(["audit", "verify", "--checkpoint", path]).status == 0)

        // Dropping the last record leaves a valid chain: only the checkpoint can tell.
        try Self.tamper(keyhold, "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)")
        #expect(try keyhold.cli(["audit", "verify"]).status == 0)
        let truncated = try keyhold.cli(["audit", "verify", "--checkpoint", path])
        #expect(truncated.status == 1)
        #expect(truncated.stderr.contains("truncated"))

        // A checkpoint whose numbers were edited no longer carries a valid signature.
        let forged = checkpoint.stdout.replacingOccurrences(of: "\"seq\" : 4", with: "\"seq\" : 3")
        try forged.write(toFile: path, atomically: true, encoding: .utf8)
        let forgedCheck = try keyhold.cli(["audit", "verify", "--checkpoint", path])
        #expect(forgedCheck.status == 1)
        #expect(forgedCheck.stderr.contains("invalid signature"))
    }

    @Test func aRewrittenLogFailsAgainstItsCheckpoint() throws {
        let keyhold = try Self.installation()
        let path = keyhold.root + "/checkpoint.json"
        try keyhold.cli(["audit", "checkpoint"]).stdout.write(toFile: path, atomically: true, encoding: .utf8)
        // Rewrite record 4 and recompute every hash after it: a consistent chain that differs from the checkpoint.
        try Self.tamper(keyhold, "DELETE FROM audit WHERE seq >= 4")
        try keyhold.startDaemon(systemdBus: nil)
        try keyhold.cli(["tenant", "create", "hooli", "--plan", "byok"])
        keyhold.stopDaemon()
        #expect(try keyhold.cli(["audit", "verify"]).status == 0)
        let rewritten = try keyhold.cli(["audit", "verify", "--checkpoint", path])
        #expect(rewritten.status == 1)
        #expect(rewritten.stderr.contains("FAILED at record 4") && rewritten.stderr.contains("rewritten"))
    }

    @Test func aWrongOrTruncatedKEKIsRefusedAndNothingChanges() throws {
        let keyhold = try KeyholdHarness()
        try keyhold.startDaemon(systemdBus: nil)
        try keyhold.cli(["tenant", "create", "acme", "--plan", "byok"])
        try keyhold.cli(["key", "set", "acme", "openai", "--no-validate"], input: Array("sk-test-kek-check".utf8))
        keyhold.stopDaemon()
        let kek = keyhold.stateDirectory + "/kek"
        let original = try Data(contentsOf: URL(fileURLWithPath: kek))

        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).write(to: URL(fileURLWithPath: kek))
        #expect(throws: HarnessError.self) { try keyhold.startDaemon(systemdBus: nil) }
        #expect(keyhold.daemonLog.contains("is not the one the stored keys were sealed with"))

        try original.prefix(31).write(to: URL(fileURLWithPath: kek))
        #expect(throws: HarnessError.self) { try keyhold.startDaemon(systemdBus: nil) }
        #expect(keyhold.daemonLog.contains("holds 31 bytes"))

        try original.write(to: URL(fileURLWithPath: kek))
        try keyhold.startDaemon(systemdBus: nil)
        #expect(try keyhold.cli(["key", "list", "acme"]).stdout.contains("active"))
    }
}
