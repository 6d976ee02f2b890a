import ArgumentParser
import Foundation
import KeyholdCore
import KeyholdServer

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host", abstract: "The fleet's hosts: one daemon each, sharing a PostgreSQL database (one host on SQLite).",
        subcommands: [List.self, Forget.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List hosts: state, sandboxes, capacity, last heartbeat.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let hosts = try await AdminClient(socketPath: global.socket).call("GET", "/v1/hosts", as: [AdminAPI.Host].self)
            if output.json { return try Output.json(hosts) }
            Output.table(
                ["HOST", "STATE", "SANDBOXES", "CAPACITY", "HEARTBEAT", "STARTED"],
                hosts.map {
                    [$0.id, $0.state, String($0.sandboxes), String($0.capacity), String(format: "%.1fs ago", $0.heartbeatAgeSeconds), $0.startedAt]
                }
            )
        }
    }

    struct Forget: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a host that is down and runs nothing.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The host's id (see `keyhold host list`).") var id: String

        func run() async throws {
            _ = try await AdminClient(socketPath: global.socket).send("DELETE", "/v1/hosts/\(id.pathSegment)")
            print("forgot host \(id)")
        }
    }
}
