import ArgumentParser
import KeyholdClient
import KeyholdCommandLine
import KeyholdCore

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox", abstract: "Start, stop and inspect tenants' sandboxes (transient systemd units).",
        subcommands: [Start.self, Stop.self, Restart.self, Status.self, List.self, Logs.self]
    )

    static func printSandboxes(_ sandboxes: [AdminAPI.Sandbox]) {
        Output.table(
            ["TENANT", "UNIT", "STATE", "SYSTEMD", "PID", "KEYS", "RESTARTS", "HOST", "INVOCATION"],
            sandboxes.map {
                [
                    $0.tenant, $0.unit, $0.state, $0.systemdState ?? "-", $0.mainPID.map(String.init) ?? "-",
                    $0.keyVersions.joined(separator: ","), String($0.restarts), $0.host ?? "-", $0.invocationID ?? "-",
                ]
            }
        )
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the tenant's sandbox and inject its keys (audited).",
            discussion: "In a fleet, the tenant goes to the least loaded active host with room, which starts it; --host pins it."
        )
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Option(help: "Start it on this host (see `keyhold host list`).") var host: String?
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let query = try host.map { "?host=" + (try HostOptions.validated(id: $0)) } ?? ""
            let sandbox = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants/\(tenant.pathSegment)/sandbox/start\(query)", as: AdminAPI.Sandbox.self
            )
            if output.json { return try Output.json(sandbox) }
            let place = sandbox.host.map { " on host \($0)" } ?? ""
            print(
                "started \(sandbox.unit) for \(tenant)\(place) (invocation \(sandbox.invocationID ?? "?"), injected \(sandbox.keyVersions.joined(separator: ", ")))"
            )
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop the tenant's sandbox.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String

        func run() async throws {
            let stopped = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants/\(tenant.pathSegment)/sandbox/stop", as: [AdminAPI.Sandbox].self)
            guard !stopped.isEmpty else {
                return print(
                    "\(tenant) had no sandbox running (its agent had already exited, or was never started): nothing to stop, and it stays stopped; "
                        + "`keyhold sandbox logs \(tenant)` shows how its agent ended")
            }
            for sandbox in stopped { print("stopped \(sandbox.unit) of \(tenant)") }
        }
    }

    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop and start again, with a fresh audited injection.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String

        func run() async throws {
            let sandbox = try await AdminClient(socketPath: global.socket).call(
                "POST", "/v1/tenants/\(tenant.pathSegment)/sandbox/restart", as: AdminAPI.Sandbox.self
            )
            print("restarted: \(sandbox.unit) (invocation \(sandbox.invocationID ?? "?"))")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the tenant's sandbox as Keyhold and systemd see it.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let sandboxes = try await AdminClient(socketPath: global.socket).call(
                "GET", "/v1/tenants/\(tenant.pathSegment)/sandbox", as: [AdminAPI.Sandbox].self
            )
            if output.json { return try Output.json(sandboxes) }
            if sandboxes.isEmpty { return print("\(tenant) has no sandbox running") }
            SandboxCommand.printSandboxes(sandboxes)
            for sandbox in sandboxes {
                print("\n\(sandbox.unit)")
                if let network = sandbox.network { print("  network  \(network)") }
                for (index, entry) in (sandbox.egress ?? []).enumerated() { print("  \(index == 0 ? "egress " : "       ")  \(entry)") }
                if let refused = sandbox.egressRefused { print("  refused  \(refused) connection\(refused == 1 ? "" : "s") since start") }
                if let directory = sandbox.stateDirectory {
                    let limit = sandbox.stateMaxBytes.map { " of \(Output.bytes($0))" } ?? ""
                    print("  state    \(directory): \(Output.bytes(sandbox.stateBytes ?? 0))\(limit)")
                }
                if let error = sandbox.lastError { print("  last error: \(error)") }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every live sandbox on this host.")
        @OptionGroup var global: GlobalOptions
        @OptionGroup var output: OutputOptions

        func run() async throws {
            let sandboxes = try await AdminClient(socketPath: global.socket).call("GET", "/v1/sandboxes", as: [AdminAPI.Sandbox].self)
            if output.json { return try Output.json(sandboxes) }
            SandboxCommand.printSandboxes(sandboxes)
        }
    }

    struct Logs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the journal of the tenant's newest sandbox.")
        @OptionGroup var global: GlobalOptions
        @Argument var tenant: String
        @Option(help: "How many lines.") var lines = 100

        func run() async throws {
            let logs = try await AdminClient(socketPath: global.socket).call(
                "GET", "/v1/tenants/\(tenant.pathSegment)/sandbox/logs?lines=\(lines)", as: AdminAPI.Logs.self
            )
            for line in logs.lines { print(line) }
        }
    }
}
