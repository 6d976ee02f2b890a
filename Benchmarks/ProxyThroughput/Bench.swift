import BenchmarkSupport
import Foundation
import KeyholdTesting
import NIOCore
import NIOPosix

/// Figures of one kind of call: one client at a time and many connections, direct to the fake and through a proxy.
struct KindFigures: Codable, Sendable {
    var kind: CallKind
    var directOne: LoadResult
    var proxyOne: LoadResult
    var directMany: LoadResult
    var proxyMany: LoadResult
    /// At `pacedRate` requests a second over the same connections (below saturation).
    var directPaced: LoadResult? = nil
    var proxyPaced: LoadResult? = nil
}

/// Keyhold's memory over the sustained run and the run with the database unwritable.
struct MemoryFigures: Sendable {
    var atStartKiB: Int?
    var beforeKiB: Int?
    var sustained: [Int] = []
    var sustainedRequests = 0
    var sustainedRate = 0.0
    var afterKiB: Int?
    /// The anonymous part (RssAnon) at the same two points: the rest of VmRSS is code mapped from files.
    var anonymousBeforeKiB: Int?
    var anonymousAfterKiB: Int?
    var unwritable: [Int] = []
    var unwritableRequests = 0
    var rowsBefore = 0
    var rowsWhileUnwritable = 0
    var backlog = (files: 0, bytes: 0)
    var rowsAfter = 0
    var rowsExpected = 0
    var drainSeconds = 0.0
    var afterUnwritableKiB: Int?
}

/// The whole run.
final class Bench: @unchecked Sendable {
    let options: Options
    /// The load generator's loops: two, as many as the cores (with one, the generator's own thread capped the
    /// direct figures at 10,000 req/s and the proxied ones at 4,300).
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    var provider: FakeProvider?
    var keyhold: KeyholdSide?

    init(options: Options) { self.options = options }

    func run() async throws {
        let provider = try await FakeProvider.start()
        self.provider = provider
        // Pinned: this thread takes the daemon's CPUs while it starts the daemon (which inherits them and sizes its
        // event loops to them), then every thread of this process moves to the load's CPUs.
        if let cpus = options.pinDaemon { try Pinning.pin(thread: 0, to: cpus) }
        let keyhold = try KeyholdSide(provider: provider)
        if let cpus = options.pinLoad { try Pinning.pinThisProcess(to: cpus) }
        self.keyhold = keyhold
        var memory = MemoryFigures()
        memory.atStartKiB = keyhold.residentKiB
        let direct = Target(name: "fake", port: provider.port, key: FakeProvider.Configuration.defaultOpenAIKey)

        // 1. The fake provider alone: if it is slow (Nagle, a small backlog), every other figure is meaningless.
        say("\n1. the fake provider alone (127.0.0.1:\(provider.port))")
        var saneFake = true
        for kind in CallKind.compared {
            let one = try await Load.interleaved([direct], kind: kind, count: min(options.requests, 1000), warmup: options.warmup, group: group)[0]
            let many = try await Load.concurrent(
                direct, kind: kind, connections: options.connections, count: min(options.concurrentRequests, 10_000), duration: nil, warmup: 5,
                group: group)
            provider.resetRequests()
            say(
                "   \(pad(kind.rawValue, 14)) 1 client: median \(ms(one.median)) ms, p99 \(ms(one.p99)) ms; \(options.connections) connections: "
                    + "\(Int(many.requestsPerSecond)) req/s, median \(ms(many.median)) ms, p99 \(ms(many.p99)) ms; errors \(one.errors + many.errors)"
            )
            if !(one.median < 1) || one.errors + many.errors > 0 { saneFake = false }
        }
        say(saneFake ? "   sane: median under 1 ms, no errors" : "   WARNING: the fake provider is slow or failing; the figures below are suspect")

        // 2. One client at a time, direct and through Keyhold alternately.
        var figures: [KindFigures] = []
        for kind in CallKind.compared {
            progress("Keyhold: \(kind.rawValue), one client, \(options.requests) requests each to the fake and through the proxy, interleaved")
            let one = try await Load.interleaved([direct, keyhold.target], kind: kind, count: options.requests, warmup: options.warmup, group: group)
            provider.resetRequests()
            progress("Keyhold: \(kind.rawValue), \(options.connections) connections, \(options.concurrentRequests) requests each")
            let directMany = try await Load.concurrent(
                direct, kind: kind, connections: options.connections, count: options.concurrentRequests, duration: nil, warmup: 5, group: group)
            provider.resetRequests()
            let proxyMany = try await Load.concurrent(
                keyhold.target, kind: kind, connections: options.connections, count: options.concurrentRequests, duration: nil, warmup: 5,
                group: group)
            provider.resetRequests()
            progress(
                "Keyhold: \(kind.rawValue), \(options.connections) connections paced at \(options.pacedRate) req/s for \(options.pacedSeconds) s each"
            )
            let directPaced = try await Load.paced(
                direct, kind: kind, connections: options.connections, rate: Double(options.pacedRate), duration: .seconds(options.pacedSeconds),
                group: group)
            let proxyPaced = try await Load.paced(
                keyhold.target, kind: kind, connections: options.connections, rate: Double(options.pacedRate),
                duration: .seconds(options.pacedSeconds), group: group)
            provider.resetRequests()
            figures.append(
                KindFigures(
                    kind: kind, directOne: one[0], proxyOne: one[1], directMany: directMany, proxyMany: proxyMany, directPaced: directPaced,
                    proxyPaced: proxyPaced))
        }
        Report.printKeyhold(figures, options: options)
        Report.printPaced(figures, options: options)

        // 3c. Clamping: chat completions whose max_tokens the caps lower, beside the same unclamped, one client.
        progress("Keyhold: clamped and unclamped chat completions, one client, \(options.requests) requests each, interleaved with direct calls")
        // All four in one loop, taking turns: the two differences are measured over the same moments.
        let four = try await Load.interleaved(
            [(direct, .plain), (keyhold.target, .plain), (direct, .clamped), (keyhold.target, .clamped)], count: options.requests,
            warmup: options.warmup, group: group)
        // 3d. Responses beside Chat Completions the same way: each pair of kinds in one loop, taking turns.
        progress("Keyhold: Responses and Chat Completions, one client, \(options.requests) requests each, interleaved with direct calls")
        var pairs: [(chat: [LoadResult], responses: [LoadResult])] = []
        for (chat, responses) in [(CallKind.plain, CallKind.responses), (.stream, .responsesStream)] {
            let both = try await Load.interleaved(
                [(direct, chat), (keyhold.target, chat), (direct, responses), (keyhold.target, responses)], count: options.requests,
                warmup: options.warmup, group: group)
            pairs.append((Array(both[0...1]), Array(both[2...3])))
        }
        provider.resetRequests()
        Report.printClamping(unclamped: Array(four[0...1]), clamped: Array(four[2...3]), pairs: pairs, responses: figures, options: options)

        // 4. Memory over a sustained run, then with the database unwritable.
        try await measureMemory(keyhold, into: &memory)
        Report.printMemory(memory, options: options)

        // 5. LiteLLM in a network namespace with only loopback.
        var litellm: LiteLLMOutcome?
        var litellmNote: String?
        if options.skipLiteLLM {
            litellmNote = "skipped (--skip-litellm)"
        } else if let reason = LiteLLMSide.ensureVenv(options) {
            litellmNote = "not run: \(reason)"
        } else {
            progress("LiteLLM: running in a network namespace (unshare --net, loopback only)")
            do {
                let outcome = try LiteLLMSide.runInNamespace(options)
                if let failure = outcome.failure { litellmNote = "failed: \(failure)" } else { litellm = outcome }
            } catch {
                litellmNote = "failed: \(error)"
            }
        }
        Report.printSideBySide(keyhold: figures, memory: memory, litellm: litellm, litellmNote: litellmNote, options: options)
    }

    private func measureMemory(_ keyhold: KeyholdSide, into memory: inout MemoryFigures) async throws {
        guard let provider else { return }
        memory.beforeKiB = keyhold.residentKiB
        memory.anonymousBeforeKiB = keyhold.anonymousKiB
        progress("Keyhold: sustained run, \(options.sustainSeconds) s at \(options.connections) connections (half streaming), RSS every 5 s")
        var sampler = MemorySampler { keyhold.pid }
        let sustained = try await Load.concurrent(
            keyhold.target, kind: .plain, connections: options.connections, count: nil, duration: .seconds(options.sustainSeconds), warmup: 0,
            group: group, alternateKinds: true)
        memory.sustained = await sampler.stop()
        memory.sustainedRequests = sustained.completed
        memory.sustainedRate = sustained.requestsPerSecond
        memory.afterKiB = keyhold.residentKiB
        memory.anonymousAfterKiB = keyhold.anonymousKiB
        provider.resetRequests()

        progress("Keyhold: the database made unwritable for usage (a trigger aborts every insert) for \(options.unwritableSeconds) s under load")
        memory.rowsBefore = try keyhold.settledUsageRows()
        try keyhold.blockUsageWrites(true)
        sampler = MemorySampler { keyhold.pid }
        let blocked = try await Load.concurrent(
            keyhold.target, kind: .plain, connections: options.connections, count: nil, duration: .seconds(options.unwritableSeconds), warmup: 0,
            group: group, alternateKinds: true)
        memory.unwritable = await sampler.stop()
        memory.unwritableRequests = blocked.completed + blocked.errors
        try? await Task.sleep(for: .seconds(1))
        memory.rowsWhileUnwritable = try keyhold.usageRows()
        memory.backlog = keyhold.journalBacklog()
        provider.resetRequests()
        try keyhold.blockUsageWrites(false)
        memory.rowsExpected = memory.rowsBefore + memory.unwritableRequests
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < .seconds(60) {
            memory.rowsAfter = try keyhold.usageRows()
            if memory.rowsAfter >= memory.rowsExpected { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        memory.drainSeconds = Load.milliseconds(clock.now - start) / 1000
        memory.afterUnwritableKiB = keyhold.residentKiB
    }

    var daemonLogTail: String { String((keyhold?.harness.daemonLog ?? "").suffix(2000)) }

    func tearDown() {
        keyhold?.tearDown()
    }
}
