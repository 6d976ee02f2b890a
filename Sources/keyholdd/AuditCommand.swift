import ArgumentParser
import Foundation
import KeyholdCommandLine
import KeyholdCore
import KeyholdOrchestration
import KeyholdStore
import KeyholdVault

/// Audit commands read the database directly and read-only: they work while the daemon is down.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: DaemonCommand.audit.rawValue, abstract: DaemonCommand.audit.abstract,
        subcommands: [List.self, Verify.self, Checkpoint.self, Export.self, Receipt.self, VerifyReceipt.self, PublicKey.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List audit records.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only the tenant of this name now (not a deleted tenant that had the name before).") var tenant: String?
        @Option(help: "Only the tenant of this id, deleted or not (a tenant.delete record gives it).") var tenantId: Int64?
        @Option(help: "Only this action (key.inject) or family (key).") var action: String?
        @Option(help: "Only records since a duration ago (24h, 30m, 7d) or an RFC 3339 time.") var since: String?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let sinceTime = try since.map { try ControlPlane.parseSince($0) }
            let store = try global.state.openStoreReadOnly()
            if tenant != nil && tenantId != nil { throw ValidationError("give --tenant or --tenant-id, not both") }
            let records = try await store.read { tx in
                let id = try tenantId ?? tenant.map { name in try tx.liveTenantID(named: name) }
                return try tx.auditRecords(tenantID: id, action: action, since: sinceTime)
            }
            if output.json { return try Output.json(records) }
            Self.printRecords(records)
        }

        static func printRecords(_ records: [AuditRecord]) {
            Output.table(
                ["SEQ", "TIME", "ACTOR", "ACTION", "TENANT", "PROVIDER", "VER", "FINGERPRINT", "OUTCOME", "UNIT / DETAILS"],
                records.map { record in
                    let event = record.event
                    var tail = event.unit.map { unit in "\(unit)\(event.invocationID.map { " inv=\($0.prefix(12))" } ?? "")" } ?? ""
                    let details = event.details.keys.sorted().map { "\($0)=\(event.details[$0]!)" }.joined(separator: " ")
                    if !details.isEmpty { tail += (tail.isEmpty ? "" : " ") + details }
                    return [
                        String(record.seq), record.time, event.actor, event.action, event.tenant ?? "-", event.provider ?? "-",
                        event.keyVersion.map(String.init) ?? "-", event.fingerprint ?? "-", event.outcome, tail,
                    ]
                }
            )
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain; with --checkpoint, also detect a truncated or rewritten log. Exits 1 naming the first bad record."
        )
        @OptionGroup var global: GlobalOptions
        @Option(help: "A checkpoint printed earlier by `keyhold audit checkpoint` and kept off this host.") var checkpoint: String?
        @Option(help: "The audit signing public key (base64) you trust; default: this host's.") var publicKey: String?

        func run() async throws {
            let state = global.state
            let store = try state.openStoreReadOnly()
            let result = try await store.read { tx in try tx.verifyAudit() }
            if let problem = result.problem {
                CommandMain.fail("audit log verification FAILED at \(problem)")
            }
            if let path = checkpoint {
                try await checkCheckpoint(path: path, state: state, store: store)
            }
            print("audit log intact: \(result.count) records, head \(result.headHash)")
        }

        private func checkCheckpoint(path: String, state: StateDirectory, store: Store) async throws {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KeyholdError.invalidInput("cannot read the checkpoint file \(path)")
            }
            let checkpoint: AuditCheckpoint
            do {
                checkpoint = try AdminJSON.decoder().decode(AuditCheckpoint.self, from: data)
            } catch {
                throw KeyholdError.invalidInput("\(path) is not a keyhold audit checkpoint: \(error)")
            }
            guard checkpoint.signatureIsValid else { CommandMain.fail("checkpoint \(path) has an invalid signature: it was altered") }
            let trusted = publicKey ?? (try? state.loadSigningKey().publicKeyBase64)
            if let trusted, trusted != checkpoint.publicKey {
                CommandMain.fail("checkpoint \(path) was signed by another key (\(checkpoint.publicKey)) than the trusted one (\(trusted))")
            }
            let (head, hash) = try await store.read { tx in (try tx.auditHead(), try tx.auditHash(ofSeq: checkpoint.seq)) }
            if head.seq < checkpoint.seq {
                CommandMain.fail(
                    "audit log verification FAILED at record \(head.seq + 1): the log ends at record \(head.seq) but checkpoint \(path) covers \(checkpoint.seq): it was truncated"
                )
            }
            if hash != checkpoint.headHash {
                CommandMain.fail(
                    "audit log verification FAILED at record \(checkpoint.seq): its hash differs from checkpoint \(path): the log was rewritten"
                )
            }
            print("checkpoint \(path) matches: record \(checkpoint.seq) signed \(checkpoint.time)")
        }
    }

    struct Checkpoint: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a signed checkpoint of the log's head (JSON); copy it off the host for `verify --checkpoint`."
        )
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let state = global.state
            let key = try state.loadSigningKey()
            let store = try state.openStoreReadOnly()
            let result = try await store.read { tx in try tx.verifyAudit() }
            if let problem = result.problem { CommandMain.fail("refusing to sign a broken log: \(problem)") }
            let checkpoint = try AuditCheckpoint.make(seq: result.count, headHash: result.headHash, time: Timestamp.now(), key: key)
            try Output.json(checkpoint)
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print every record as JSON lines.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let store = try global.state.openStoreReadOnly()
            let encoder = AdminJSON.encoder()
            try await store.read { tx in
                try tx.forEachAuditBatch { batch in
                    for record in batch { print(String(decoding: try encoder.encode(record), as: UTF8.self)) }
                    return true
                }
            }
        }
    }
}
