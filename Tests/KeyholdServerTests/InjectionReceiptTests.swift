import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// A tenant downloads a signed receipt of its own injections with its tenant token, and anyone checks it offline.
@Suite(.offCooperativePool, .serialized, .enabled(if: TestSystemd.shouldRun))
struct InjectionReceiptTests {
    @Test func aReceiptVerifiesOfflineAndATamperedOneDoesNot() async throws {
        let port = try LoopbackPort.free()
        let sandboxes = try SandboxHarness(extraArguments: ["--tcp", "127.0.0.1:\(port)"])
        let keyhold = sandboxes.keyhold
        let acme = SandboxHarness.tenantName("rcpt")
        let other = SandboxHarness.tenantName("oth")
        for tenant in [acme, other] {
            try sandboxes.tenant(tenant, agent: SandboxInjectionTests.hashAgent)
            try sandboxes.setKey(tenant, SandboxHarness.canary())
            try #require(try sandboxes.start(tenant).status == 0)
        }
        #expect(try keyhold.cli(["sandbox", "restart", acme]).status == 0)

        let created = try keyhold.cli(["token", "create", "portal-\(acme)", "--tenant", acme])
        let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let answer = try await AdminHTTP(.tcp(port: port), token: token).send("GET", "/v1/tenants/\(acme)/receipt")
        try #require(answer.status == 200, "\(answer.text)")
        #expect(!answer.text.contains(other), "another tenant's records are in the receipt")
        let directory = keyhold.root + "/receipts"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let receipt = directory + "/receipt.json"
        try answer.body.write(to: URL(fileURLWithPath: receipt))

        let publicKey = directory + "/audit.pem"
        let pem = try keyhold.cli(["audit", "public-key"])
        try #require(pem.status == 0, "\(pem.stderr)")
        try Data(pem.stdout.utf8).write(to: URL(fileURLWithPath: publicKey))
        // A standard PEM: OpenSSL reads it as an Ed25519 public key.
        let openssl = try ProcessRunner.run("/usr/bin/openssl", ["pkey", "-pubin", "-in", publicKey, "-noout", "-text"])
        #expect(openssl.status == 0 && openssl.stdout.contains("ED25519"), "\(openssl.stdout) \(openssl.stderr)")

        let verified = try keyhold.cli(["audit", "verify-receipt", receipt, "--public-key", publicKey])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stdout.contains("2 key.inject/key.use record(s) of tenant \(acme)"), "\(verified.stdout)")
        let units = try keyhold.cli(["audit", "list", "--tenant", acme, "--action", "key.inject", "--json"]).stdout
        for line in verified.stdout.split(separator: "\n").dropFirst() {
            let unit = String(line.split(separator: " ")[5])
            #expect(units.contains(unit), "\(line)")
        }

        // Tampering: a changed record, a dropped record, another tenant's name, a key the verifier does not trust.
        let object = try #require(try JSONSerialization.jsonObject(with: answer.body) as? [String: Any])
        let records = try #require(object["records"] as? [[String: Any]])
        let cases: [(String, [String: Any], String)] = [
            ("altered", Self.editing(object, record: 0) { $0["fingerprint"] = "0000000000000000" }, "does not match its hash"),
            (
                "dropped",
                {
                    var copy = object; copy["records"] = Array(records.dropFirst()); return copy
                }(), "signature does not match"
            ),
            (
                "renamed",
                {
                    var copy = object; copy["tenant"] = other; return copy
                }(), "signature does not match"
            ),
        ]
        for (name, tampered, problem) in cases {
            let path = directory + "/\(name).json"
            try JSONSerialization.data(withJSONObject: tampered).write(to: URL(fileURLWithPath: path))
            let result = try keyhold.cli(["audit", "verify-receipt", path, "--public-key", publicKey])
            #expect(result.status == 1, "\(name): \(result.stdout)")
            #expect(result.stderr.contains("does NOT verify") && result.stderr.contains(problem), "\(name): \(result.stderr)")
        }
        let stranger = directory + "/stranger.pem"
        let generated = try ProcessRunner.run("/bin/sh", ["-c", "openssl genpkey -algorithm ed25519 | openssl pkey -pubout -out \(stranger)"])
        try #require(generated.status == 0, "\(generated.stderr)")
        let untrusted = try keyhold.cli(["audit", "verify-receipt", receipt, "--public-key", stranger])
        #expect(untrusted.status == 1 && untrusted.stderr.contains("signed by another key"), "\(untrusted.stderr)")

        for tenant in [acme, other] { #expect(try keyhold.cli(["sandbox", "stop", tenant]).status == 0) }
    }

    /// A copy of a receipt with record `index`'s event edited.
    static func editing(_ receipt: [String: Any], record index: Int, _ edit: (inout [String: Any]) -> Void) -> [String: Any] {
        var copy = receipt
        var records = copy["records"] as? [[String: Any]] ?? []
        var event = records[index]["event"] as? [String: Any] ?? [:]
        edit(&event)
        records[index]["event"] = event
        copy["records"] = records
        return copy
    }
}
