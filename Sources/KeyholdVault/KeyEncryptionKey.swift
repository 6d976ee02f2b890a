import Crypto
import Foundation

/// The key-encryption key (KEK): 32 random bytes that wrap every data key.
///
/// Its id is derived from the key itself, so a database row names the KEK it needs and a wrong
/// KEK is recognised before any decryption is attempted.
public struct KeyEncryptionKey: Sendable {
    let key: SymmetricKey
    /// 16 hex characters identifying this KEK (not secret).
    public let id: String

    /// The size of a KEK file.
    public static let byteCount = 32

    init(bytes: [UInt8]) {
        key = SymmetricKey(data: bytes)
        let digest = SHA256.hash(data: Array("keyhold-kek-id".utf8) + bytes)
        id = digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// A new random KEK.
    public static func generate() -> KeyEncryptionKey {
        var bytes = [UInt8](repeating: 0, count: byteCount)
        var generator = SystemRandomNumberGenerator()
        for index in bytes.indices { bytes[index] = generator.next() }
        defer { SecretBytes.wipe(&bytes) }
        return KeyEncryptionKey(bytes: bytes)
    }

    /// Loads a KEK file (32 raw bytes). Refuses files of the wrong size or readable by others.
    /// - Throws: `VaultError` with `.kekMissing` or `.kekInvalid`, naming the file and the fix.
    public static func load(path: String) throws -> KeyEncryptionKey {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw VaultError(.kekMissing, "no KEK at \(path): run `keyhold init` to create one, or give the daemon its KEK credential")
        }
        if let mode = attributes[.posixPermissions] as? Int, mode & 0o077 != 0 {
            throw VaultError(
                .kekInvalid, "the KEK file \(path) is readable by group or others (mode \(String(mode, radix: 8))): run `chmod 600 \(path)`")
        }
        guard var bytes = FileManager.default.contents(atPath: path).map(Array.init) else {
            throw VaultError(.kekMissing, "cannot read the KEK file \(path): check it is readable by this user")
        }
        defer { SecretBytes.wipe(&bytes) }
        guard bytes.count == byteCount else {
            throw VaultError(
                .kekInvalid,
                "the KEK file \(path) holds \(bytes.count) bytes, a Keyhold KEK holds exactly \(byteCount): it is truncated or not a KEK; restore it from your backup"
            )
        }
        return KeyEncryptionKey(bytes: bytes)
    }

    /// Writes a KEK file with mode 0600, refusing to overwrite an existing one.
    public func write(to path: String) throws {
        try key.withUnsafeBytes { raw in
            try SecureFile.createExclusive(path: path, contents: raw)
        }
    }

    /// The key that makes fingerprints (a keyed hash, so a fingerprint does not reveal a low-entropy key).
    var fingerprintKey: SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array("keyhold-fingerprint-v1".utf8), outputByteCount: 32)
    }
}

/// Where the daemon finds its KEK: a systemd credential when run under systemd, else a file.
public enum KEKLocation {
    /// `$CREDENTIALS_DIRECTORY/kek` when that exists, else `stateDirectory/kek`.
    public static func path(stateDirectory: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let credentials = environment["CREDENTIALS_DIRECTORY"] {
            let path = (credentials as NSString).appendingPathComponent("kek")
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return (stateDirectory as NSString).appendingPathComponent("kek")
    }
}
