import Foundation
import KeyholdCore
import KeyholdStore
public import KeyholdVault

/// The files of one Keyhold installation: the database, the KEK and the audit signing key.
public struct StateDirectory: Sendable {
    public let path: String
    /// A PostgreSQL URL when the state is a fleet's, else nil (the SQLite file `keyhold.db` here).
    public let databaseURL: String?

    public init(path: String, database: String? = nil) {
        self.path = path
        databaseURL = database
    }

    public var databasePath: String { file("keyhold.db") }
    /// Where the store is: the PostgreSQL URL, or the SQLite file.
    public var databaseLocation: String { databaseURL ?? databasePath }

    /// Opens (creating or migrating) the store.
    public func openStore() throws -> Store {
        try checkDatabaseURL()
        return try Store.open(location: databaseLocation)
    }

    /// A `--database` (or `KEYHOLD_DATABASE`) that is not a PostgreSQL URL is refused, without echoing it (it may
    /// hold a password).
    func checkDatabaseURL() throws {
        if let databaseURL, !Store.isDatabaseURL(databaseURL) {
            throw StoreError("--database (or KEYHOLD_DATABASE) must be a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL")
        }
    }

    /// Opens the store to read it, changing nothing (for `audit` commands, which work while the daemon is down).
    public func openStoreReadOnly() throws -> Store {
        try checkDatabaseURL()
        return try Store.openReadOnly(location: databaseLocation)
    }
    public var defaultKEKPath: String { file("kek") }
    public var signingKeyPath: String { file("audit-signing.key") }

    /// The KEK to use: `$CREDENTIALS_DIRECTORY/kek` under systemd, else the state directory's `kek`.
    public var kekPath: String { KEKLocation.path(stateDirectory: path) }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

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
        _ = try openStore()
        return kek.id
    }

    /// Where KEKs replaced by a rotation wait until no data key needs them (`kek.d/ID`).
    public var previousKEKDirectory: String { file("kek.d") }

    /// Loads the vault: the current KEK, and the previous ones a rotation has not finished with.
    public func loadVault() throws -> Vault {
        let current = try KeyEncryptionKey.load(path: kekPath)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: previousKEKDirectory)) ?? []
        let previous = try names.sorted().filter { !$0.hasPrefix(".") }.map {
            try KeyEncryptionKey.load(path: (previousKEKDirectory as NSString).appendingPathComponent($0))
        }
        return Vault(kek: current, previous: previous.filter { $0.id != current.id })
    }

    /// Makes a new KEK the current one, keeping the old one in `kek.d/` until `retireKEK`.
    ///
    /// Crash-safe: the old KEK is copied into `kek.d/` before the new one replaces `kek` by an atomic rename,
    /// so at every instant each data key's KEK is on disk.
    /// - Returns: the vault with the new KEK current and every older one as previous.
    public func installNewKEK(replacing vault: Vault) throws -> Vault {
        guard kekPath == defaultKEKPath else {
            throw KeyholdError.conflict(
                "the KEK comes from a systemd credential (\(kekPath)): rotate it by creating a new credential and restarting, not in place"
            )
        }
        try FileManager.default.createDirectory(
            atPath: previousKEKDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let kept = (previousKEKDirectory as NSString).appendingPathComponent(vault.kek.id)
        if !FileManager.default.fileExists(atPath: kept) { try vault.kek.write(to: kept) }
        let new = KeyEncryptionKey.generate()
        let staged = file(".kek.new")
        unlink(staged)
        try new.write(to: staged)
        guard rename(staged, defaultKEKPath) == 0 else {
            throw KeyholdError.unavailable("cannot install the new KEK at \(defaultKEKPath): \(String(cString: strerror(errno)))")
        }
        Self.syncDirectory(path)
        return Vault(kek: new, previous: [vault.kek] + vault.previous)
    }

    /// Destroys a previous KEK file (overwritten, then removed).
    public func destroyPreviousKEK(id: String) throws {
        let path = (previousKEKDirectory as NSString).appendingPathComponent(id)
        if let handle = FileHandle(forWritingAtPath: path) {
            handle.write(Data(repeating: 0, count: KeyEncryptionKey.byteCount))
            try handle.synchronize()
            try handle.close()
        }
        try FileManager.default.removeItem(atPath: path)
        Self.syncDirectory(previousKEKDirectory)
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }

    /// Loads the audit signing key (beside the KEK: the credentials directory or the state directory).
    public func loadSigningKey() throws -> AuditSigningKey {
        let besideKEK = ((kekPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("audit-signing.key")
        return try AuditSigningKey.load(path: FileManager.default.fileExists(atPath: besideKEK) ? besideKEK : signingKeyPath)
    }
}
