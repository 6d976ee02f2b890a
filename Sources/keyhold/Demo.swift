import ArgumentParser
import Crypto
import Foundation
import KeyholdCore
import KeyholdSandbox
import KeyholdServer
import KeyholdStore
import Logging

extension Keyhold {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Onboard a tenant on each plan in a throwaway state dir, inject keys into real sandboxes, show and verify the audit log."
        )

        @OptionGroup var daemon: DaemonFlags
        @Flag(help: "Keep the throwaway state directory.") var keep = false

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .warning
                return handler
            }
            let root = try Self.makeTemporaryDirectory()
            let global = try GlobalOptions.parse(["--state-dir", root + "/state", "--socket", root + "/admin.sock"])
            let globalArguments = ["--state-dir", global.stateDir, "--socket", global.socket]
            step("1. keyhold init --state-dir \(global.stateDir)")
            try await Self.run(Init.self, globalArguments)

            step("2. systemd for the sandboxes")
            let systemd: SystemdInstance
            if daemon.noSystemd {
                throw KeyholdError.invalidInput("the demo starts real sandboxes: drop --no-systemd")
            } else if PrivateSystemd.hostHasSystemd {
                systemd = .host
                print("using the host's systemd (PID 1)")
            } else {
                print("PID 1 is not systemd: booting a private systemd in its own pid and mount namespace (own /run, /tmp, /var/tmp)…")
                let instance = try PrivateSystemd.boot(logDirectory: root, diesWithThisProcess: true)
                systemd = .privateInstance(instance)
                print("private systemd running as pid \(instance.systemdPID), bus \(instance.busAddress)")
            }
            var flags = daemon
            flags.systemdBus = systemd.busAddress
            flags.journalDirectory = systemd.journalDirectory
            let server = try Daemon(options: try flags.options(global: global, tcp: nil), logger: Logger(label: "keyhold"))
            let ready = AsyncStream<Void>.makeStream()
            let serving = Task { try await server.run(handleSignals: false) { ready.continuation.yield() } }
            for await _ in ready.stream { break }
            do {
                try await tour(global: global, arguments: globalArguments)
            } catch {
                await cleanUp(server: server, serving: serving, systemd: systemd, root: root)
                throw error
            }
            await cleanUp(server: server, serving: serving, systemd: systemd, root: root)
        }

        /// Runs a CLI command in process, as a user would type it.
        static func run<Command: AsyncParsableCommand>(_ type: Command.Type, _ arguments: [String]) async throws {
            var command = try Command.parse(arguments)
            try await command.run()
        }

        private func tour(global: GlobalOptions, arguments g: [String]) async throws {
            let client = AdminClient(socketPath: global.socket)
            step("3. keyhold serve is up on \(global.socket); plans on offer")
            try await Self.run(PlanCommand.List.self, g)

            step("4. onboard acme on BYOK and globex on Managed")
            for (name, plan) in [("acme", "byok"), ("globex", "managed")] {
                _ = try await client.call(
                    "POST", "/v1/tenants", body: AdminAPI.CreateTenant(name: name, plan: plan, agent: nil), as: AdminAPI.Tenant.self
                )
                print("keyhold tenant create \(name) --plan \(plan)")
            }

            step("5. acme stores its Anthropic key (piped on stdin in real use; a random demo key here, not validated: no internet)")
            let demoKey = "sk-ant-demo-" + (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
            let stored = try await client.call(
                "PUT", "/v1/tenants/acme/keys/anthropic", body: AdminAPI.SetKey(key: demoKey, baseURL: nil, validate: false, skipShapeCheck: false),
                as: AdminAPI.Key.self
            )
            print("stored anthropic key version \(stored.version), fingerprint \(stored.fingerprint) (a keyed hash: the key itself is never shown)")
            let expected = SHA256.hash(data: Array(demoKey.utf8)).map { String(format: "%02x", $0) }.joined().prefix(16)

            step("6. keyhold tenant list")
            try await Self.run(TenantCommand.List.self, g)

            step("7. keyhold sandbox start acme / globex: a transient unit each, key through a pipe, key.inject audited first")
            for tenant in ["acme", "globex"] {
                try await Self.run(SandboxCommand.Start.self, g + [tenant])
            }

            step("8. the agents prove they hold their credentials (a hash of each, never the value)")
            for (tenant, last) in [("acme", "ANTHROPIC_API_KEY"), ("globex", "KEYHOLD_PROXY_TOKEN")] {
                let lines = try await waitForAgentLines(client: client, tenant: tenant, last: last)
                for line in lines { print("\(tenant): \(line)") }
            }
            print("expected for acme's ANTHROPIC_API_KEY: sha256:\(expected)")

            step("9. keyhold sandbox list, and each sandbox's boundary: a network of its own, one way out, its own state")
            try await Self.run(SandboxCommand.List.self, g)
            for tenant in ["acme", "globex"] {
                let sandboxes = try await client.call("GET", "/v1/tenants/\(tenant)/sandbox", as: [AdminAPI.Sandbox].self)
                for sandbox in sandboxes {
                    print("\(tenant): network \(sandbox.network ?? "?")")
                    for entry in sandbox.egress ?? [] { print("\(tenant): may reach \(entry)") }
                    print("\(tenant): state in \(sandbox.stateDirectory ?? "?")")
                }
            }

            step("10. keyhold audit list --action key.inject")
            try await Self.run(AuditCommand.List.self, g + ["--action", "key.inject"])

            step("11. keyhold audit list")
            try await Self.run(AuditCommand.List.self, g)

            step("12. keyhold sandbox stop, keyhold tenant delete (keys destroyed, agent state deleted), keyhold audit verify")
            for tenant in ["acme", "globex"] { try await Self.run(SandboxCommand.Stop.self, g + [tenant]) }
            if !keep {
                for tenant in ["acme", "globex"] { try await Self.run(TenantCommand.Delete.self, g + [tenant, "--yes"]) }
            }
            try await Self.run(AuditCommand.Verify.self, g)
        }

        /// Polls the unit's journal until the example agent has reported its `last` variable (bounded: 15 s).
        private func waitForAgentLines(client: AdminClient, tenant: String, last: String) async throws -> [String] {
            let deadline = ContinuousClock.now + .seconds(15)
            while ContinuousClock.now < deadline {
                let logs = try await client.call("GET", "/v1/tenants/\(tenant)/sandbox/logs?lines=50", as: AdminAPI.Logs.self)
                let lines = logs.lines.filter { $0.contains("agent holds") }
                if lines.contains(where: { $0.contains(last) }) { return lines }
                try await Task.sleep(for: .milliseconds(100))
            }
            return ["(no report from the agent in its journal within 15 s; see `keyhold sandbox logs \(tenant)`)"]
        }

        private func cleanUp(server: Daemon, serving: Task<Void, any Error>, systemd: SystemdInstance, root: String) async {
            step("13. clean up: stop the daemon\(systemd.busAddress == nil ? "" : " and the private systemd")\(keep ? "" : ", remove \(root)")")
            await server.shutdown()
            _ = await serving.result
            try? systemd.stop()
            if !keep { try? FileManager.default.removeItem(atPath: root) }
            print("done")
        }

        private func step(_ title: String) {
            print("\n== \(title)")
        }

        static func makeTemporaryDirectory() throws -> String {
            var template = Array((NSTemporaryDirectory() + "keyhold-demo-XXXXXX").utf8CString)
            guard let path = mkdtemp(&template) else { throw KeyholdError.unavailable("cannot create a temporary directory") }
            return String(cString: path)
        }
    }
}
