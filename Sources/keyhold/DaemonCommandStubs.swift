import ArgumentParser
import KeyholdCommandLine

/// `keyholdd`'s commands as `keyhold --help` lists them. `Main` hands them over before parsing, so these run only
/// if parsing reaches them some other way; they hand over too.
enum DaemonCommandStubs {
    struct Init: ParsableCommand {
        static let configuration = stubConfiguration(.initialize)
        func run() throws { try handOver(.initialize) }
    }

    struct Serve: ParsableCommand {
        static let configuration = stubConfiguration(.serve)
        func run() throws { try handOver(.serve) }
    }

    struct Demo: ParsableCommand {
        static let configuration = stubConfiguration(.demo)
        func run() throws { try handOver(.demo) }
    }

    struct Audit: ParsableCommand {
        static let configuration = stubConfiguration(.audit)
        func run() throws { try handOver(.audit) }
    }

    static func stubConfiguration(_ command: DaemonCommand) -> CommandConfiguration {
        CommandConfiguration(commandName: command.rawValue, abstract: command.abstract, discussion: command.handOverNote)
    }

    static func handOver(_ command: DaemonCommand) throws -> Never {
        try SiblingProgram.daemon.replaceCurrentProcess(arguments: [command.rawValue])
    }
}
