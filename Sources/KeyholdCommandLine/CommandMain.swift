public import ArgumentParser
import Foundation
import KeyholdCore

/// The `main` of Keyhold's programs: parses the command line, runs the command, and prints an error the way people
/// read it (`PROGRAM: error: MESSAGE`, exit 1) when its message is written for them.
public enum CommandMain {
    /// Keyhold's version, which both programs print with `--version`.
    public static let version = "0.1.0"

    /// Runs the command `arguments` name under `root`, then exits.
    public static func run<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]? = nil) async -> Never {
        do {
            var command = try root.parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let error as any UserFacingError {
            fail(error.description)
        } catch {
            root.exit(withError: error)
        }
    }

    /// Prints `PROGRAM: error: MESSAGE` on standard error and exits 1.
    public static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("\(programName): error: \(message)\n".utf8))
        exit(1)
    }

    /// The name the user typed: `keyhold` also when `keyhold` handed the command to `keyholdd` (it keeps `argv[0]`).
    public static var programName: String {
        CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent } ?? "keyhold"
    }
}
