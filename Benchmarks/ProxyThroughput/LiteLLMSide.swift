import BenchmarkSupport
import Foundation
import Glibc
import KeyholdTesting
import NIOCore
import NIOPosix

/// What the LiteLLM run measured, handed from the child in the network namespace to the parent as JSON.
struct LiteLLMOutcome: Codable, Sendable {
    var version = Options.litellmVersion
    var kinds: [KindFigures] = []
    var startupSeconds = 0.0
    var rssReadyKiB: Int?
    var rssPeakKiB: Int?
    var rssAfterKiB: Int?
    var failure: String?

    static let features = [
        "master key auth (no virtual keys: they need its Postgres database)", "global max_budget (in memory, process-wide, litellm_settings)",
        "per-key/user/team budgets OFF (need its database)", "spend logs OFF (need its database)", "rate limits OFF",
        "telemetry OFF, local model cost map", "1 worker (--num_workers 1), network namespace with loopback only",
    ]
}

/// Installs LiteLLM in a throwaway virtual environment and runs it, with its own fake provider and client, inside a
/// network namespace that has only loopback.
enum LiteLLMSide {
    /// Makes (or reuses) the virtual environment with exactly `Options.litellmVersion`; returns why not when it cannot.
    static func ensureVenv(_ options: Options) -> String? {
        let venv = options.venv
        if let installed = installedVersion(venv) {
            if Options.compromisedLiteLLM.contains(installed) { return "refusing LiteLLM \(installed) found in \(venv): a compromised release" }
            if installed == Options.litellmVersion { return nil }
        }
        try? FileManager.default.removeItem(atPath: venv)
        try? FileManager.default.createDirectory(atPath: options.scratch, withIntermediateDirectories: true)
        progress("installing litellm[proxy]==\(Options.litellmVersion) into \(venv) (pip; once, then reused)")
        guard let made = try? ProcessRunner.run("/usr/bin/env", ["python3", "-m", "venv", venv]), made.status == 0 else {
            return "python3 -m venv failed"
        }
        let pip = try? ProcessRunner.run(
            venv + "/bin/pip", ["install", "--disable-pip-version-check", "-q", "litellm[proxy]==\(Options.litellmVersion)"])
        guard let pip, pip.status == 0 else {
            return "pip could not install litellm[proxy]==\(Options.litellmVersion): " + String((pip?.stderr ?? "did not run").suffix(600))
        }
        guard installedVersion(venv) == Options.litellmVersion else { return "pip installed another LiteLLM version than \(Options.litellmVersion)" }
        return nil
    }

    static func installedVersion(_ venv: String) -> String? {
        guard FileManager.default.isExecutableFile(atPath: venv + "/bin/litellm"),
            let result = try? ProcessRunner.run(venv + "/bin/python", ["-c", "import importlib.metadata as m; print(m.version('litellm'))"]),
            result.status == 0
        else { return nil }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs this program again as `--litellm-child` inside `unshare --net` and reads its outcome.
    static func runInNamespace(_ options: Options) throws -> LiteLLMOutcome {
        let me = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let encoded = String(decoding: try JSONEncoder().encode(options), as: UTF8.self)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--net", "/bin/sh", "-c", #"ip link set lo up && exec "$0" "$@""#, me, "--litellm-child", encoded]
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: stdout.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard let line = output.split(separator: "\n").last(where: { $0.hasPrefix(resultPrefix) }) else {
            throw BenchError("the LiteLLM run in the network namespace gave no result (exit \(process.terminationStatus))")
        }
        return try JSONDecoder().decode(LiteLLMOutcome.self, from: Data(line.dropFirst(resultPrefix.count).utf8))
    }

    static let resultPrefix = "LITELLM-RESULT "

    /// The child: inside the namespace, a fake provider, LiteLLM in front of it, and the same measurements.
    static func child(_ options: Options) async -> LiteLLMOutcome {
        var outcome = LiteLLMOutcome()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var litellm: Process?
        do {
            let provider = try await FakeProvider.start()
            let port = try LoopbackPort.free()
            let directory = (options.scratch as NSString).appendingPathComponent("litellm-run-\(getpid())")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let masterKey = "sk-keyhold-bench-litellm-master"
            let config = """
                model_list:
                  - model_name: gpt-4o-mini
                    litellm_params:
                      model: openai/gpt-4o-mini
                      api_base: \(provider.baseURL)/v1
                      api_key: \(FakeProvider.Configuration.defaultOpenAIKey)
                litellm_settings:
                  telemetry: False
                  max_budget: 1000000
                  budget_duration: 30d
                general_settings:
                  master_key: \(masterKey)
                """
            try config.write(toFile: directory + "/config.yaml", atomically: true, encoding: .utf8)
            let log = directory + "/litellm.log"
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: options.venv + "/bin/litellm")
            process.arguments = ["--config", directory + "/config.yaml", "--host", "127.0.0.1", "--port", String(port), "--num_workers", "1"]
            var environment = ProcessInfo.processInfo.environment
            environment["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
            environment["LITELLM_LOG"] = "ERROR"
            environment["DATABASE_URL"] = nil
            process.environment = environment
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            let clock = ContinuousClock()
            let started = clock.now
            try process.run()
            litellm = process
            progress("LiteLLM \(Options.litellmVersion) starting in the network namespace (pid \(process.processIdentifier), log \(log))")
            let target = Target(name: "litellm", port: port, key: masterKey)
            try await waitUntilAnswering(target, process: process, group: group, log: log)
            outcome.startupSeconds = Load.milliseconds(clock.now - started) / 1000
            outcome.rssReadyKiB = Machine.treeResidentKiB(of: process.processIdentifier)
            let pid = process.processIdentifier
            let sampler = MemorySampler(interval: .seconds(1), tree: true) { pid }
            let direct = Target(name: "fake", port: provider.port, key: FakeProvider.Configuration.defaultOpenAIKey)
            for kind in CallKind.chat {
                progress("LiteLLM: \(kind.rawValue), one client, \(options.litellmRequests) requests to the fake and through LiteLLM, interleaved")
                let one = try await Load.interleaved(
                    [direct, target], kind: kind, count: options.litellmRequests, warmup: min(options.warmup, 50), group: group)
                provider.resetRequests()
                progress("LiteLLM: \(kind.rawValue), \(options.connections) connections")
                let directMany = try await Load.concurrent(
                    direct, kind: kind, connections: options.connections, count: min(options.concurrentRequests, 10_000), duration: nil,
                    warmup: 5, group: group)
                let many = try await Load.concurrent(
                    target, kind: kind, connections: options.connections, count: options.litellmConcurrentRequests, duration: nil, warmup: 2,
                    group: group)
                provider.resetRequests()
                outcome.kinds.append(KindFigures(kind: kind, directOne: one[0], proxyOne: one[1], directMany: directMany, proxyMany: many))
            }
            let samples = await sampler.stop()
            outcome.rssPeakKiB = samples.max()
            outcome.rssAfterKiB = Machine.treeResidentKiB(of: pid)
            try? await provider.stop()
        } catch {
            outcome.failure = "\(error)"
        }
        if let litellm { stop(litellm) }
        try? await group.shutdownGracefully()
        return outcome
    }

    /// Waits (bounded: 180 s to listen, then 60 s to answer 200) until LiteLLM answers a chat completion.
    private static func waitUntilAnswering(_ target: Target, process: Process, group: any EventLoopGroup, log: String) async throws {
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw BenchError("LiteLLM exited with \(process.terminationStatus): " + tail(log))
            }
            if await LoopbackPort.waitUntilListening(target.port, timeout: 0.5) { break }
        }
        let answerDeadline = ContinuousClock.now + .seconds(60)
        var last = ""
        while ContinuousClock.now < answerDeadline {
            if let connection = try? await Connection.open(target, kind: .plain, group: group) {
                let reply = try? await connection.send()
                await connection.close()
                if reply?.status == 200 { return }
                last = reply.map { "HTTP \($0.status): \($0.sample)" } ?? "no answer"
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw BenchError("LiteLLM did not answer 200 within the time allowed (\(last)): " + tail(log))
    }

    private static func tail(_ path: String) -> String {
        String(((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").suffix(1500))
    }

    /// Stops LiteLLM and whatever it started, by pid: SIGTERM, then SIGKILL after 10 s.
    private static func stop(_ process: Process) {
        let pids = Machine.tree(of: process.processIdentifier)
        for pid in pids.reversed() { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        for pid in pids.reversed() where kill(pid, 0) == 0 { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A progress line on stderr (stdout carries the report).
func progress(_ line: String) {
    FileHandle.standardError.write(Data("[\(MachineFacts.loadAverage)] \(line)\n".utf8))
}
