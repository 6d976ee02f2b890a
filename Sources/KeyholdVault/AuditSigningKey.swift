import Crypto
import Foundation

/// The Ed25519 key that signs audit checkpoints, kept beside the KEK (`audit-signing.key`, mode 0600).
public struct AuditSigningKey: Sendable {
    let privateKey: Curve25519.Signing.PrivateKey

    /// Base64 of the raw public key: what an admin pins to check checkpoints off the host.
    public var publicKeyBase64: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }

    public static func generate() -> AuditSigningKey { AuditSigningKey(privateKey: .init()) }

    /// Loads the signing key (32 raw bytes).
    public static func load(path: String) throws -> AuditSigningKey {
        guard var bytes = FileManager.default.contents(atPath: path).map(Array.init) else {
            throw VaultError(.kekMissing, "no audit signing key at \(path): run `keyhold init`")
        }
        defer { SecretBytes.wipe(&bytes) }
        do {
            return AuditSigningKey(privateKey: try .init(rawRepresentation: bytes))
        } catch {
            throw VaultError(.kekInvalid, "\(path) is not an Ed25519 key (\(bytes.count) bytes): restore it from your backup")
        }
    }

    public func write(to path: String) throws {
        try privateKey.rawRepresentation.withUnsafeBytes { try SecureFile.createExclusive(path: path, contents: $0) }
    }

    /// Signs a message.
    public func sign(_ message: [UInt8]) throws -> [UInt8] { Array(try privateKey.signature(for: message)) }

    /// Checks a signature against a base64 raw public key.
    public static func verify(signature: [UInt8], message: [UInt8], publicKeyBase64: String) -> Bool {
        guard let raw = Data(base64Encoded: publicKeyBase64), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            return false
        }
        return key.isValidSignature(signature, for: message)
    }
}
