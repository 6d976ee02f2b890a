import Crypto
import Foundation

/// The Ed25519 key that signs audit checkpoints, kept beside the KEK (`audit-signing.key`, mode 0600).
public struct AuditSigningKey: Sendable {
    let privateKey: Curve25519.Signing.PrivateKey

    /// Base64 of the raw public key: what an admin pins to check checkpoints off the host.
    public var publicKeyBase64: String { privateKey.publicKey.rawRepresentation.base64EncodedString() }

    /// The public key as a PEM `PUBLIC KEY` (an RFC 8410 SubjectPublicKeyInfo), what `openssl pkey -pubin` reads.
    public var publicKeyPEM: String {
        let der = Self.ed25519SPKIPrefix + Array(privateKey.publicKey.rawRepresentation)
        let body = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN PUBLIC KEY-----\n\(body)\n-----END PUBLIC KEY-----\n"
    }

    /// The DER header of an Ed25519 SubjectPublicKeyInfo (algorithm id 1.3.101.112, then a 32-byte bit string).
    static let ed25519SPKIPrefix: [UInt8] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]

    /// The base64 raw public key in an Ed25519 PEM `PUBLIC KEY`.
    /// - Throws: `VaultError` when the text is not one.
    public static func publicKeyBase64(fromPEM pem: String) throws -> String {
        let body = pem.split(whereSeparator: \.isNewline).filter { !$0.hasPrefix("-----") }.joined()
        guard pem.contains("-----BEGIN PUBLIC KEY-----"), let der = Data(base64Encoded: body).map(Array.init),
            der.count == ed25519SPKIPrefix.count + 32, Array(der.prefix(ed25519SPKIPrefix.count)) == ed25519SPKIPrefix
        else {
            throw VaultError(.kekInvalid, "not an Ed25519 PEM public key: expected the output of `keyhold audit public-key`")
        }
        return Data(der.dropFirst(ed25519SPKIPrefix.count)).base64EncodedString()
    }

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
