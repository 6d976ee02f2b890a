import Foundation
import KeyholdStore
public import KeyholdVault

/// The files of one Keyhold installation: the database, the KEK and the audit signing key.
public struct StateDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    public var databasePath: String { file("keyhold.db") }
    public var defaultKEKPath: String { file("kek") }
    public var signingKeyPath: String { file("audit-signing.key") }

    /// The KEK to use: `$CREDENTIALS_DIRECTORY/kek` under systemd, else the state directory's `kek`.
    public var kekPath: String { KEKLocation.path(stateDirectory: path) }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Creates the directory (mode 0700), a KEK, an audit signing key and the database. Never overwrites a key.
    /// - Returns: the new KEK's id.
    @discardableResult
    public func initialize() throws -> String {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(path, 0o700)
        if FileManager.default.fileExists(atPath: defaultKEKPath) || FileManager.default.fileExists(atPath: signingKeyPath) {
            throw VaultError(.kekInvalid, "\(path) is already initialised (a KEK exists): `keyhold init` never replaces keys")
        }
        let kek = KeyEncryptionKey.generate()
        try kek.write(to: defaultKEKPath)
        try AuditSigningKey.generate().write(to: signingKeyPath)
        _ = try Store.open(path: databasePath)
        return kek.id
    }

    /// Loads the vault with this installation's KEK.
    public func loadVault() throws -> Vault { Vault(kek: try KeyEncryptionKey.load(path: kekPath)) }

    /// Loads the audit signing key (beside the KEK: the credentials directory or the state directory).
    public func loadSigningKey() throws -> AuditSigningKey {
        let besideKEK = ((kekPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("audit-signing.key")
        return try AuditSigningKey.load(path: FileManager.default.fileExists(atPath: besideKEK) ? besideKEK : signingKeyPath)
    }
}
