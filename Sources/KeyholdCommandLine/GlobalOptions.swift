public import ArgumentParser
import Foundation

/// Options every command that talks to the daemon or the state directory shares.
public struct GlobalOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp("The state directory (database, KEK, audit signing key).", valueName: "dir"))
    public var stateDir: String = ProcessInfo.processInfo.environment["KEYHOLD_STATE_DIR"] ?? "/var/lib/keyhold"

    @Option(name: .long, help: ArgumentHelp("The daemon's admin socket.", valueName: "path"))
    public var socket: String = ProcessInfo.processInfo.environment["KEYHOLD_SOCKET"] ?? "/run/keyhold/admin.sock"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A fleet's PostgreSQL database (default: $KEYHOLD_DATABASE, else the systemd credential database-url, else keyhold.db in the state directory); prefer the variable or the credential for a URL with a password: arguments are visible in ps.",
            valueName: "postgresql://user:password@host:port/db"))
    public var database: String?

    public init() {}

    /// The PostgreSQL URL this command uses, or nil for the SQLite file in the state directory: `--database`, else
    /// `$KEYHOLD_DATABASE`, else the systemd credential `database-url` (`LoadCredentialEncrypted=`, see deploy/).
    public var databaseURL: String? {
        let environment = ProcessInfo.processInfo.environment
        if let database { return database }
        if let variable = environment["KEYHOLD_DATABASE"], !variable.isEmpty { return variable }
        guard let credentials = environment["CREDENTIALS_DIRECTORY"],
            let url = try? String(contentsOfFile: credentials + "/database-url", encoding: .utf8)
        else { return nil }
        let trimmed = url.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }
}

/// `--json` for scripts.
public struct OutputOptions: ParsableArguments, Sendable {
    @Flag(name: .long, help: "Print JSON instead of a table.")
    public var json = false

    public init() {}
}
