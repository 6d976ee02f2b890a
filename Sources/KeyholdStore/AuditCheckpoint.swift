import Foundation
public import KeyholdVault

/// A signed statement of the audit log's head, to be copied off the host.
///
/// A host can rewrite its own chain from scratch; it cannot forge a checkpoint an admin kept
/// elsewhere, so `verify --checkpoint` catches truncation and rewrites.
public struct AuditCheckpoint: Codable, Sendable, Equatable {
    public var format: String
    public var seq: Int64
    public var headHash: String
    public var time: String
    /// Base64 raw Ed25519 public key of the host's audit signing key.
    public var publicKey: String
    /// Base64 Ed25519 signature over `signedMessage`.
    public var signature: String

    /// What the signature covers.
    public var signedMessage: [UInt8] { Array("keyhold-audit-checkpoint-v1|seq=\(seq)|head=\(headHash)|time=\(time)".utf8) }

    /// Signs the given head.
    public static func make(seq: Int64, headHash: String, time: String, key: AuditSigningKey) throws -> AuditCheckpoint {
        var checkpoint = AuditCheckpoint(
            format: "keyhold-audit-checkpoint-v1", seq: seq, headHash: headHash, time: time, publicKey: key.publicKeyBase64, signature: ""
        )
        checkpoint.signature = Data(try key.sign(checkpoint.signedMessage)).base64EncodedString()
        return checkpoint
    }

    /// Whether the signature is valid for the checkpoint's own public key.
    public var signatureIsValid: Bool {
        guard let signature = Data(base64Encoded: signature) else { return false }
        return AuditSigningKey.verify(signature: Array(signature), message: signedMessage, publicKeyBase64: publicKey)
    }
}
