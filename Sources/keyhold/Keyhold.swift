import ArgumentParser
import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer

/// The `keyhold` command: noun then verb, like `gh` and `docker`.
struct Keyhold: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "keyhold",
        abstract: "Host AI agents for tenants: encrypted provider keys, sandboxes under systemd, an audited injection of each key.",
        version: version,
        subcommands: [
            Init.self, Serve.self, Demo.self, TenantCommand.self, PlanCommand.self, KeyCommand.self, SandboxCommand.self, AuditCommand.self,
            TokenCommand.self, KEKCommand.self, UsageCommand.self, PlatformCommand.self, HostCommand.self, SecretCommand.self,
        ]
    )
}

/// Options every command that talks to the daemon or the state directory shares.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The state directory (database, KEK, audit signing key).", valueName: "dir"))
    var stateDir: String = ProcessInfo.processInfo.environment["KEYHOLD_STATE_DIR"] ?? "/var/lib/keyhold"

    @Option(name: .long, help: ArgumentHelp("The daemon's admin socket.", valueName: "path"))
    var socket: String = ProcessInfo.processInfo.environment["KEYHOLD_SOCKET"] ?? "/run/keyhold/admin.sock"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "A fleet's PostgreSQL database (default: $KEYHOLD_DATABASE, else the systemd credential database-url, else keyhold.db in the state directory); prefer the variable or the credential for a URL with a password: arguments are visible in ps.",
            valueName: "postgresql://user:password@host:port/db"))
    var database: String?

    /// The PostgreSQL URL this command uses, or nil for the SQLite file in the state directory: `--database`, else
    /// `$KEYHOLD_DATABASE`, else the systemd credential `database-url` (`LoadCredentialEncrypted=`, see deploy/).
    var databaseURL: String? {
        let environment = ProcessInfo.processInfo.environment
        if let database { return database }
        if let variable = environment["KEYHOLD_DATABASE"], !variable.isEmpty { return variable }
        guard let credentials = environment["CREDENTIALS_DIRECTORY"],
            let url = try? String(contentsOfFile: credentials + "/database-url", encoding: .utf8)
        else { return nil }
        let trimmed = url.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }

    /// The state directory's files, with the database this command uses.
    var state: StateDirectory { StateDirectory(path: stateDir, database: databaseURL) }
}

/// `--json` for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false
}

@main
enum Main {
    static func main() async {
        do {
            var command = try Keyhold.parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let error as KeyholdError {
            fail(error.message)
        } catch let error as any CustomStringConvertible & Error where UserFacingError.matches(error) {
            fail(error.description)
        } catch {
            Keyhold.exit(withError: error)
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("keyhold: error: \(message)\n".utf8))
        exit(1)
    }
}
