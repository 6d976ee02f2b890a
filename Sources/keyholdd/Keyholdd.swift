import ArgumentParser
import KeyholdCommandLine

/// `keyholdd`: Keyhold's daemon and the commands that own the state directory. People type them as `keyhold init`,
/// `keyhold serve`, `keyhold demo` and `keyhold audit ...`; `keyhold` hands them here (`DaemonCommand`).
struct Keyholdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyholdd",
        abstract: "Keyhold's daemon, and the commands that own the state directory (keyhold hands them here).",
        version: CommandMain.version,
        subcommands: [Init.self, Serve.self, Demo.self, AuditCommand.self]
    )
}

@main
enum Main {
    static func main() async {
        await CommandMain.run(Keyholdd.self)
    }
}
