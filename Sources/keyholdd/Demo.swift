import ArgumentParser
import Foundation
import KeyholdCommandLine
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import Logging

extension Keyholdd {
    struct Demo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: DaemonCommand.demo.abstract,
            discussion: """
                Onboards a tenant on BYOK and one on Managed, starts a real sandbox for each, lets the managed agent call a stand-in \
                LLM provider through the metering proxy until the plan's cap refuses it, rotates the BYOK key while a watcher checks \
                that an agent runs throughout, shows a refused egress attempt, and verifies the audit log and an injection receipt. \
                Everything it starts is stopped and removed at the end.
                """
        )

        @OptionGroup var daemon: DaemonFlags
        @Flag(help: "Keep the throwaway state directory.") var keep = false

        func run() async throws {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = .error  // the steps say what happens; a refused egress is shown by the agent and `sandbox status`
                return handler
            }
            if daemon.noSystemd { throw KeyholdError.invalidInput("the demo starts real sandboxes: drop --no-systemd") }
            guard geteuid() == 0 else {
                throw KeyholdError.invalidInput(
                    "the demo starts systemd units and sandboxes, which needs root: run it as root (sudo \(CommandLine.arguments[0]) demo)")
            }
            let began = ContinuousClock.now
            let root = try Self.makeTemporaryDirectory()
            let global = try GlobalOptions.parse(["--state-dir", root + "/state", "--socket", root + "/admin.sock"])
            var resources = DemoResources(root: root)
            do {
                try await prepareAndTour(global: global, resources: &resources)
            } catch {
                await resources.release(keep: keep)
                throw error
            }
            await resources.release(keep: keep)
            print("done in \(String(format: "%.1f", (ContinuousClock.now - began) / .seconds(1))) s; nothing of the demo is left running")
        }

        private func prepareAndTour(global: GlobalOptions, resources: inout DemoResources) async throws {
            let globalArguments = ["--state-dir", global.stateDir, "--socket", global.socket]
            Self.step("1. keyhold init --state-dir \(global.stateDir)")
            try await Self.run(Init.self, globalArguments)

            Self.step("2. systemd for the sandboxes")
            if PrivateSystemd.hostHasSystemd {
                resources.systemd = .host
                print("using the host's systemd (PID 1)")
            } else {
                print("PID 1 is not systemd: booting a private systemd in its own pid and mount namespace (own /run, /tmp, /var/tmp)…")
                let instance = try PrivateSystemd.boot(logDirectory: resources.root, diesWithThisProcess: true)
                resources.systemd = .privateInstance(instance)
                print("private systemd running as pid \(instance.systemdPID)")
            }

            Self.step("3. a stand-in LLM provider on loopback")
            let standIn = try DemoStandIn.start()
            resources.standIn = standIn
            print(
                "this machine has no internet, so the demo runs a STAND-IN provider on \(standIn.baseURL): not OpenAI or Anthropic, but "
                    + "their wire formats, usage fields included (Keyhold's test double, keyhold-fake-provider)")

            var flags = daemon
            flags.systemdBus = resources.systemd?.busAddress
            flags.journalDirectory = resources.systemd?.journalDirectory
            flags.plans = try DemoPlans.write(shippedPlans: daemon.plans, into: resources.root + "/plans")
            flags.proxySocket = resources.root + "/proxy.sock"
            flags.providerBaseURL = ["anthropic=\(standIn.baseURL)", "openai=\(standIn.baseURL)"]
            let server = try Daemon(options: try flags.options(global: global, tcp: nil), logger: Logger(label: "keyhold"))
            if let placement = server.launcherPlacement, let reason = placement.copiedBecause {
                print("sandboxes cannot run \(flags.execPath) (\(reason)): the daemon runs its root-owned copy \(placement.execPath)")
                if placement.createdCopy { resources.stagedLauncher = (placement.execPath as NSString).deletingLastPathComponent }
            }
            let ready = AsyncStream<Void>.makeStream()
            resources.server = server
            resources.serving = Task { try await server.run(handleSignals: false) { ready.continuation.yield() } }
            for await _ in ready.stream { break }
            print("keyhold serve is up on \(global.socket), its metering proxy sending managed calls to the stand-in")

            try await DemoTour(global: global, arguments: globalArguments, keep: keep, standInKey: DemoStandIn.anthropicKey).run()
        }

        /// Runs a CLI command in process, as a user would type it.
        static func run<Command: AsyncParsableCommand>(_ type: Command.Type, _ arguments: [String]) async throws {
            var command = try Command.parse(arguments)
            try await command.run()
        }

        static func step(_ title: String) {
            print("\n== \(title)")
        }

        static func makeTemporaryDirectory() throws -> String {
            var template = Array((NSTemporaryDirectory() + "keyhold-demo-XXXXXX").utf8CString)
            guard let path = mkdtemp(&template) else { throw KeyholdError.unavailable("cannot create a temporary directory") }
            return String(cString: path)
        }
    }
}

/// What the demo started, released in reverse order whatever happened.
struct DemoResources {
    let root: String
    var systemd: SystemdInstance?
    var standIn: DemoStandIn?
    var server: Daemon?
    var serving: Task<Void, any Error>?
    /// The launcher's copy the demo made because sandboxes could not run it where it was built.
    var stagedLauncher: String?

    init(root: String) { self.root = root }

    func release(keep: Bool) async {
        Keyholdd.Demo.step(
            "clean up: stop the daemon, the stand-in provider\(systemd?.busAddress == nil ? "" : " and the private systemd")\(keep ? "" : ", remove \(root)")"
        )
        if let server {
            await server.shutdown()
            _ = await serving?.result
        }
        standIn?.stop()
        try? systemd?.stop()
        if let stagedLauncher { try? FileManager.default.removeItem(atPath: stagedLauncher) }
        if !keep { try? FileManager.default.removeItem(atPath: root) }
    }
}
