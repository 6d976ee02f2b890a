import Foundation
import KeyholdTestTraits
import KeyholdTesting
import Testing

/// `keyhold` is the client: it links none of the daemon, and hands the commands that own the state directory to
/// `keyholdd` beside it, so that `keyhold serve`, `keyhold init` and `keyhold audit verify` still work as typed.
@Suite(.offCooperativePool) struct ClientProgramTests {
    /// Swift's mangled names carry their module's name, length first: a module the binary links leaves them in its
    /// symbols and its type metadata.
    static let daemonModules = ["KeyholdServer", "KeyholdOrchestration", "KeyholdStore", "KeyholdSandbox", "Hummingbird", "GRDB", "PostgresNIO"]

    static func mentions(_ binary: Data, _ module: String) -> Bool {
        binary.range(of: Data("\(module.utf8.count)\(module)".utf8)) != nil
    }

    @Test func theClientLinksNoneOfTheDaemon() throws {
        let client = try Data(contentsOf: URL(fileURLWithPath: BuildProducts.keyhold))
        let daemon = try Data(contentsOf: URL(fileURLWithPath: BuildProducts.keyholdd))
        for module in Self.daemonModules {
            // The same search finds the module in keyholdd: the absence below is the client's, not the search's.
            #expect(Self.mentions(daemon, module), "keyholdd links \(module)")
            #expect(!Self.mentions(client, module), "keyhold links \(module)")
        }
        #expect(Self.mentions(client, "KeyholdClient"))
    }

    @Test func theDaemonsCommandsAreHandedOverAsTyped() throws {
        let help = try ProcessRunner.run(BuildProducts.keyhold, ["--help"])
        #expect(help.status == 0)
        for command in ["init", "serve", "demo", "audit", "tenant", "sandbox"] {
            #expect(help.stdout.contains("\n  \(command) "), "keyhold --help lists \(command)")
        }
        // keyholdd's own help for serve: options only the daemon knows.
        let serveHelp = try ProcessRunner.run(BuildProducts.keyhold, ["serve", "--help"])
        #expect(serveHelp.status == 0 && serveHelp.stdout.contains("--exec-path"), "\(serveHelp.stdout)")
        let viaHelp = try ProcessRunner.run(BuildProducts.keyhold, ["help", "audit"])
        #expect(viaHelp.status == 0 && viaHelp.stdout.contains("verify-receipt"), "\(viaHelp.stdout)")
        // An error from keyholdd names the program the user typed.
        let empty = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: empty) }
        let verify = try ProcessRunner.run(BuildProducts.keyhold, ["audit", "verify", "--state-dir", empty + "/none"])
        #expect(verify.status == 1 && verify.stderr.hasPrefix("keyhold: error: "), "\(verify.stderr)")
    }

    @Test func aClientWithoutItsDaemonProgramSaysWhatToInstall() throws {
        let alone = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: alone) }
        let copy = alone + "/keyhold"
        try FileManager.default.copyItem(atPath: BuildProducts.keyhold, toPath: copy)
        let result = try ProcessRunner.run(copy, ["init", "--state-dir", alone + "/state"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("keyhold: error: cannot run \(alone)/keyholdd (No such file or directory)"), "\(result.stderr)")
        #expect(result.stderr.contains("reinstall the keyhold package"))
        #expect(!FileManager.default.fileExists(atPath: alone + "/state"), "nothing was made")
        // Its own commands still work.
        #expect(try ProcessRunner.run(copy, ["--version"]).stdout == "0.1.0\n")
    }

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("keyhold-client-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        return path
    }
}
