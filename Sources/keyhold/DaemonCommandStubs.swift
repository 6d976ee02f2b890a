import ArgumentParser
import KeyholdCommandLine

/// `keyholdd`'s commands as `keyhold --help` lists them. `Main` hands these commands to `keyholdd` before anything is
/// parsed, so these types only name them in the help (and in keyhold's man pages).
enum DaemonCommandStubs {
    struct Init: ParsableCommand { static let configuration = listing(.initialize) }
    struct Serve: ParsableCommand { static let configuration = listing(.serve) }
    struct Demo: ParsableCommand { static let configuration = listing(.demo) }
    struct Audit: ParsableCommand { static let configuration = listing(.audit) }

    static func listing(_ command: DaemonCommand) -> CommandConfiguration {
        CommandConfiguration(commandName: command.rawValue, abstract: command.abstract, discussion: command.handOverNote)
    }
}
