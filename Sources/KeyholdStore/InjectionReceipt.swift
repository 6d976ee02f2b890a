import Crypto
import Foundation
public import KeyholdCore
public import KeyholdVault

/// A signed extract of one tenant's `key.inject` and `key.use` records: proof of when and where its keys were decrypted
/// (injected into an agent, or used by the broker for it), that the tenant (or anyone it shows the receipt to) checks
/// offline with the host's audit public key.
///
/// Each record carries its own hash and its predecessor's, as in the audit log; the signature covers the records'
/// hashes and the log's head at issue time, so a record cannot be altered, dropped from the middle or added, and an
/// auditor holding the full log (or a checkpoint) can place the receipt in it.
public struct InjectionReceipt: Codable, Sendable, Equatable {
    public static let formatName = "keyhold-injection-receipt-v1"

    public var format: String
    public var tenant: String
    /// The host whose audit signing key signed the receipt.
    public var host: String
    public var issuedAt: String
    /// The audit log's last record when the receipt was issued, and its hash.
    public var headSeq: Int64
    public var headHash: String
    /// The tenant's `key.inject` and `key.use` records, in sequence order.
    public var records: [AuditRecord]

    /// The actions a receipt holds.
    public static let actions: Set<String> = [AuditAction.keyInject.rawValue, AuditAction.keyUse.rawValue]
    /// Base64 raw Ed25519 public key of the signing host's audit key.
    public var publicKey: String
    /// Base64 Ed25519 signature over `signedMessage`.
    public var signature: String

    /// What the signature covers: the receipt's fields and a SHA-256 over every record's sequence number and hash.
    public var signedMessage: [UInt8] {
        let listed = records.map { "\($0.seq):\($0.hash)" }.joined(separator: "\n")
        let digest = SHA256.hash(data: Array(listed.utf8)).map { String(format: "%02x", $0) }.joined()
        return Array(
            "\(Self.formatName)|tenant=\(tenant)|host=\(host)|issued=\(issuedAt)|head_seq=\(headSeq)|head=\(headHash)|records=\(records.count):\(digest)"
                .utf8)
    }

    /// Signs an extract.
    public static func make(
        tenant: String, host: String, head: (seq: Int64, hash: String), records: [AuditRecord], key: AuditSigningKey, issuedAt: String
    ) throws -> InjectionReceipt {
        var receipt = InjectionReceipt(
            format: formatName, tenant: tenant, host: host, issuedAt: issuedAt, headSeq: head.seq, headHash: head.hash, records: records,
            publicKey: key.publicKeyBase64, signature: "")
        receipt.signature = Data(try key.sign(receipt.signedMessage)).base64EncodedString()
        return receipt
    }

    /// Checks the receipt against the public key the verifier trusts.
    /// - Returns: nil when it verifies, else the first problem found, in words.
    public func problem(trustingPublicKey trusted: String) -> String? {
        guard format == Self.formatName else { return "it is not a keyhold injection receipt (format '\(format.prefix(40))')" }
        guard publicKey == trusted else { return "it was signed by another key (\(publicKey)) than the one you trust (\(trusted))" }
        guard let signatureBytes = Data(base64Encoded: signature),
            AuditSigningKey.verify(signature: Array(signatureBytes), message: signedMessage, publicKeyBase64: publicKey)
        else { return "its signature does not match its contents: it was altered after signing" }
        var previous: Int64 = 0
        for record in records {
            guard AuditLog.hash(of: record) == record.hash else { return "record \(record.seq) does not match its hash: it was altered" }
            guard Self.actions.contains(record.event.action), record.event.tenant == tenant else {
                return "record \(record.seq) is not a key.inject or key.use record of tenant '\(tenant)'"
            }
            guard record.seq > previous, record.seq <= headSeq else { return "record \(record.seq) is out of order or beyond the head" }
            previous = record.seq
        }
        return nil
    }
}
