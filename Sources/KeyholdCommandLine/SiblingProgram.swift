import Foundation
import KeyholdCore

/// One of Keyhold's programs installed beside the running one: `keyhold` (the client, which links no daemon code)
/// and `keyholdd` (the daemon, `init`, the demo and the audit commands, which read the store directly). Each finds
/// the other in its own directory: `/usr/bin` from the package, `.build/debug` or `.build/release` in a build tree.
public struct SiblingProgram: Sendable {
    /// The client: `keyhold`.
    public static let client = SiblingProgram(name: "keyhold")
    /// The program that owns the state directory: `keyholdd`.
    public static let daemon = SiblingProgram(name: "keyholdd")

    public let name: String

    /// The program `name` beside the running one (also `keyhold-exec`, or the demo's stand-in provider).
    public init(name: String) { self.name = name }

    /// The directory of the running executable (`/proc/self/exe`, symbolic links resolved).
    public static var executableDirectory: String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (path as NSString).deletingLastPathComponent
    }

    /// Where the program is: beside the running executable.
    public var path: String { (Self.executableDirectory as NSString).appendingPathComponent(name) }

    /// Replaces this process with the program, keeping the pid (what systemd's `Type=notify` and a test that signals
    /// the daemon rely on), `argv[0]` (so errors and usage name the command the user typed), the environment and the
    /// open descriptors. Returns only by throwing, when the program cannot be executed.
    public func replaceCurrentProcess(arguments: [String]) throws -> Never {
        let argv0 = CommandLine.arguments.first ?? name
        var cArguments = ([argv0] + arguments).map { strdup($0) }
        cArguments.append(nil)
        execv(path, cArguments)
        let reason = String(cString: strerror(errno))
        cArguments.forEach { free($0) }
        throw KeyholdError.unavailable(
            "cannot run \(path) (\(reason)): `\(CommandMain.programName) \(arguments.first ?? "")` is carried out by \(name), "
                + "which is installed beside \(CommandMain.programName); reinstall the keyhold package, or build every product (swift build)")
    }

    /// Runs the program as a child with the same standard input, output and error, and waits for it without holding
    /// a thread (the demo's daemon answers the child on this process's threads meanwhile).
    /// - Throws: `KeyholdError.failed` naming the command when it exits non-zero.
    public func run(arguments: [String]) async throws {
        fflush(nil)  // every output stream: what this process printed comes before the child's
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let exited = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in exited.continuation.finish() }
        try process.run()
        for await _ in exited.stream {}
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            throw KeyholdError.failed("`\(name) \(arguments.prefix(3).joined(separator: " "))` failed (exit status \(process.terminationStatus))")
        }
    }
}
