import ArgumentParser
import Foundation
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct HostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host", abstract: "The fleet's hosts: one daemon each, sharing a PostgreSQL database (one host on SQLite).",
        subcommands: [List.self, Drain.self, Activate.self, Forget.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List hosts: state, sandboxes, capacity, last heartbeat.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let hosts = try await AdminClient(socketPath: global.socket).call("GET", "/v1/hosts", as: [AdminAPI.Host].self)
            if output.json { return try Output.json(hosts) }
            Output.table(
                ["HOST", "STATE", "SANDBOXES", "CAPACITY", "HEARTBEAT", "KEK", "STARTED"],
                hosts.map {
                    [
                        $0.id, $0.state, String($0.sandboxes), String($0.capacity), String(format: "%.1fs ago", $0.heartbeatAgeSeconds),
                        $0.kek ?? "-", $0.startedAt,
                    ]
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

    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a host's tenants to other hosts, each blue/green (no downtime), and take no new ones.",
            discussion: "Audited as host.drain. `keyhold host activate ID` makes it take tenants again."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The host's id (see `keyhold host list`).") var id: String
        @Flag(help: "Wait until the host runs no sandbox (at most --timeout seconds).") var wait = false
        @Option(help: "How long --wait waits, in seconds.") var timeout = 300
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let client = AdminClient(socketPath: global.socket)
            let drain = try await client.call("POST", "/v1/hosts/\(id.pathSegment)/drain", as: AdminAPI.Drain.self)
            if output.json {
                try Output.json(drain)
            } else {
                print("host \(id) is draining: \(drain.moved.count) tenant(s) placed on other hosts, \(drain.left) found no room and stay")
            }
            guard wait else { return }
            let deadline = ContinuousClock.now + .seconds(timeout)
            while ContinuousClock.now < deadline {
                let host = try await client.call("GET", "/v1/hosts", as: [AdminAPI.Host].self).first { $0.id == id }
                if (host?.sandboxes ?? 0) <= drain.left {
                    if !output.json { print("host \(id) runs \(host?.sandboxes ?? 0) sandbox(es): drained") }
                    return
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            throw KeyholdError.unavailable("host \(id) still runs sandboxes after \(timeout) s: see `keyhold sandbox list`")
        }
    }

    struct Activate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a drained host take tenants again (audited).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The host's id.") var id: String

        func run() async throws {
            _ = try await AdminClient(socketPath: global.socket).send("POST", "/v1/hosts/\(id.pathSegment)/activate")
            print("host \(id) is active")
        }
    }
}
