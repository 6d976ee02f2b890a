import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore
import KeyholdVault

extension AuditCommand {
    /// Fetches a tenant's signed injection receipt from the daemon.
    struct Receipt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a signed receipt of a tenant's key.inject and key.use records (JSON), for the tenant to check with `verify-receipt`."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The tenant.") var tenant: String
        @Option(help: "Only injections since a duration ago (24h, 30m, 7d) or an RFC 3339 time.") var since: String?

        func run() async throws {
            var path = "/v1/tenants/\(tenant.pathSegment)/receipt"
            if let since { path += "?since=\(since.pathSegment)" }
            let receipt = try await AdminClient(socketPath: global.socket).call("GET", path, as: InjectionReceipt.self)
            try Output.json(receipt)
        }
    }

    /// Checks a receipt offline against a PEM public key.
    struct VerifyReceipt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "verify-receipt",
            abstract:
                "Check an injection receipt offline: its signature, against the PEM key you trust, and every record's hash. Exits 1 naming the problem."
        )
        // Accepted like every command's, though nothing on this host is read: the check is offline.
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The receipt (JSON) to check.") var file: String
        @Option(help: "The host's audit public key (a PEM file, from `keyhold audit public-key`).") var publicKey: String

        func run() async throws {
            guard let pem = FileManager.default.contents(atPath: publicKey).map({ String(decoding: $0, as: UTF8.self) }) else {
                throw KeyholdError.invalidInput("cannot read the public key file \(publicKey)")
            }
            let trusted = try AuditSigningKey.publicKeyBase64(fromPEM: pem)
            guard let data = FileManager.default.contents(atPath: file) else {
                throw KeyholdError.invalidInput("cannot read the receipt file \(file)")
            }
            let receipt: InjectionReceipt
            do {
                receipt = try AdminJSON.decoder().decode(InjectionReceipt.self, from: data)
            } catch {
                throw KeyholdError.invalidInput("\(file) is not a keyhold injection receipt: \(error)")
            }
            if let problem = receipt.problem(trustingPublicKey: trusted) {
                CommandMain.fail("receipt \(file) does NOT verify: \(problem)")
            }
            print(
                "receipt \(file) verifies: \(receipt.records.count) key.inject/key.use record(s) of tenant \(receipt.tenant), signed by host \(receipt.host) at \(receipt.issuedAt), audit head \(receipt.headSeq)"
            )
            for record in receipt.records {
                let event = record.event
                print(
                    "  #\(record.seq) \(record.time) \(event.action) \(event.provider ?? "-") v\(event.keyVersion.map(String.init) ?? "-") \(event.fingerprint ?? "-") \(event.unit ?? "-") by \(event.actor)"
                )
            }
        }
    }

    /// Prints this host's audit public key as PEM.
    struct PublicKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "public-key", abstract: "Print this host's audit signing public key (PEM), to check receipts and checkpoints with.")
        @OptionGroup var global: GlobalOptions

        func run() async throws { print(try global.state.loadSigningKey().publicKeyPEM, terminator: "") }
    }
}
