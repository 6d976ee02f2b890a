import ArgumentParser
import KeyholdCommandLine

/// The `keyhold` command: noun then verb, like `gh` and `docker`. It talks to the daemon over its admin socket and
/// links none of the daemon's code; the commands that own the state directory are `keyholdd`'s (`DaemonCommand`).
struct Keyhold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold",
        abstract: "Host AI agents for tenants: encrypted provider keys, sandboxes under systemd, an audited injection of each key.",
        version: CommandMain.version,
        subcommands: [
            DaemonCommandStubs.Init.self, DaemonCommandStubs.Serve.self, DaemonCommandStubs.Demo.self, TenantCommand.self, PlanCommand.self,
            KeyCommand.self, SandboxCommand.self, DaemonCommandStubs.Audit.self, TokenCommand.self, KEKCommand.self, UsageCommand.self,
            PlatformCommand.self, HostCommand.self, SecretCommand.self,
        ]
    )
}

@main
enum Main {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if let handedOver = DaemonCommand.handedOver(arguments) {
            do {
                try SiblingProgram.daemon.replaceCurrentProcess(arguments: handedOver)
            } catch {
                CommandMain.fail(String(describing: error))
            }
        }
        await CommandMain.run(Keyhold.self, arguments: arguments)
    }
}
