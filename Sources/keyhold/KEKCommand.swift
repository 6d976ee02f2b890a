import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct KEKCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kek", abstract: "Rotate the key-encryption key: rewrap every data key while the daemon serves.",
        subcommands: [Status.self, Rotate.self, Retire.self]
    )

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "How many data keys each KEK wraps.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let status = try await AdminClient(socketPath: global.socket).call("GET", "/v1/kek", as: [AdminAPI.KEKStatus].self)
            if output.json { return try Output.json(status) }
            Output.table(
                ["KEK", "ROLE", "DATA KEYS", "FILE"],
                status.map { [$0.id, $0.current ? "current" : "previous", String($0.wrappedKeys), $0.present ? "present" : "MISSING"] }
            )
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new KEK and rewrap every data key under it (or resume an interrupted rewrap)."
        )
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let result = try await AdminClient(socketPath: global.socket).call("POST", "/v1/kek/rotate", as: AdminAPI.KEKRotation.self)
            let rate = result.seconds > 0 ? Double(result.rewrapped) / result.seconds : 0
            print(
                "\(result.resumed ? "resumed: " : "")KEK \(result.kekID) is current; rewrapped \(result.rewrapped) data keys in \(String(format: "%.2f", result.seconds)) s (\(Int(rate)) keys/s)"
            )
            print("back up the new KEK, then run `keyhold kek retire` to destroy the old one")
        }
    }

    struct Retire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Destroy every previous KEK that no data key needs any more.")
        @OptionGroup var global: GlobalOptions

        func run() async throws {
            let retired = try await AdminClient(socketPath: global.socket).call("POST", "/v1/kek/retire", as: [String].self)
            print(retired.isEmpty ? "no previous KEK to retire" : "retired and destroyed KEK \(retired.joined(separator: ", "))")
        }
    }
}
