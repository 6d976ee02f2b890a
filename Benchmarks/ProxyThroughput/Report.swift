import BenchmarkSupport
import Foundation

/// The printed figures.
enum Report {
    static func printKeyhold(_ figures: [KindFigures], options: Options) {
        say("\n2. added latency, one client at a time (\(options.requests) requests of each kind, interleaved with direct calls)")
        for figure in figures {
            say(
                "   \(pad(figure.kind.rawValue, 14)) direct median \(ms(figure.directOne.median)) p99 \(ms(figure.directOne.p99)) ms | Keyhold median "
                    + "\(ms(figure.proxyOne.median)) p99 \(ms(figure.proxyOne.p99)) ms | added median \(ms(figure.proxyOne.median - figure.directOne.median)) "
                    + "p99 \(ms(figure.proxyOne.p99 - figure.directOne.p99)) ms; errors \(figure.proxyOne.errors)" + firstError(figure.proxyOne))
        }
        say("\n3. \(options.connections) concurrent connections, caps on (\(options.concurrentRequests) requests of each kind per target)")
        for figure in figures {
            say(
                "   \(pad(figure.kind.rawValue, 14)) direct \(Int(figure.directMany.requestsPerSecond)) req/s, median \(ms(figure.directMany.median)) "
                    + "p99 \(ms(figure.directMany.p99)) ms | Keyhold \(Int(figure.proxyMany.requestsPerSecond)) req/s, median "
                    + "\(ms(figure.proxyMany.median)) p99 \(ms(figure.proxyMany.p99)) ms | added p99 "
                    + "\(ms(figure.proxyMany.p99 - figure.directMany.p99)) ms; errors \(figure.proxyMany.errors)" + firstError(figure.proxyMany))
        }
    }

    static func printPaced(_ figures: [KindFigures], options: Options) {
        say(
            "\n3b. \(options.connections) connections paced at \(options.pacedRate) req/s in all, \(options.pacedSeconds) s per target (below saturation)"
        )
        for figure in figures {
            guard let direct = figure.directPaced, let proxy = figure.proxyPaced else { continue }
            say(
                "   \(pad(figure.kind.rawValue, 14)) direct median \(ms(direct.median)) p99 \(ms(direct.p99)) ms | Keyhold median \(ms(proxy.median)) "
                    + "p99 \(ms(proxy.p99)) ms | added median \(ms(proxy.median - direct.median)) p99 \(ms(proxy.p99 - direct.p99)) ms; "
                    + "\(proxy.completed) answered, errors \(proxy.errors)" + firstError(proxy))
        }
    }

    /// Issue 19's figures: what the Responses API adds beside Chat Completions, and what clamping costs.
    /// - Parameter pairs: chat and Responses (whole, then streamed), each `[direct, Keyhold]`, measured in one loop.
    static func printClamping(
        unclamped: [LoadResult], clamped: [LoadResult], pairs: [(chat: [LoadResult], responses: [LoadResult])], responses figures: [KindFigures],
        options: Options
    ) {
        let addedPlain = unclamped[1].median - unclamped[0].median
        let addedClamped = clamped[1].median - clamped[0].median
        say("\n3c. clamping, one client (\(options.requests) requests of each, interleaved with direct calls, same run)")
        say(
            "   unclamped      added median \(ms(addedPlain)) ms | clamped (max_tokens lowered, body rewritten) added median \(ms(addedClamped)) ms "
                + "| clamping costs \(ms(addedClamped - addedPlain, 4)) ms; errors \(clamped[1].errors)" + firstError(clamped[1]))
        func added(_ kind: CallKind) -> (one: Double, many: Double)? {
            figures.first { $0.kind == kind }.map { ($0.proxyOne.median - $0.directOne.median, $0.proxyMany.requestsPerSecond) }
        }
        say("\n3d. Responses beside Chat Completions, one client (\(options.requests) requests of each, both kinds in one loop)")
        let kinds = [(CallKind.plain, CallKind.responses), (.stream, .responsesStream)]
        var sameLoop: [(chat: Double, responses: Double)] = []
        for ((chat, responses), pair) in zip(kinds, pairs) {
            let addedChat = pair.chat[1].median - pair.chat[0].median
            let addedResponses = pair.responses[1].median - pair.responses[0].median
            sameLoop.append((addedChat, addedResponses))
            say(
                "   \(pad(chat.rawValue, 14)) added median \(ms(addedChat)) ms | \(pad(responses.rawValue, 16)) added median "
                    + "\(ms(addedResponses)) ms | difference \(ms(addedResponses - addedChat, 4)) ms; errors \(pair.responses[1].errors)"
                    + firstError(pair.responses[1]))
        }
        say("\n   targets (issue 19):")
        for ((chat, responses), figure) in zip(kinds, sameLoop) {
            guard let chatFigure = added(chat), let responsesFigure = added(responses) else { continue }
            say(
                "     \(pad(responses.rawValue, 16)) adds \(ms(figure.responses)) ms median at 1 client vs \(ms(figure.chat)) ms for "
                    + "\(chat.rawValue) chat in the same loop (\(Int(responsesFigure.many)) vs \(Int(chatFigure.many)) req/s at "
                    + "\(options.connections) connections): " + (figure.responses <= figure.chat + 0.01 ? "met" : "MISSED") + " (within 0.01 ms)")
        }
        let cost = addedClamped - addedPlain
        say("     clamping costs <= 0.02 ms per request:     \(ms(cost, 4)) ms  \(cost <= 0.02 ? "met" : "MISSED")")
    }

    static func firstError(_ result: LoadResult) -> String {
        result.firstError.map { " (first: \($0.prefix(200)))" } ?? ""
    }

    static func printMemory(_ memory: MemoryFigures, options: Options) {
        let list = { (samples: [Int]) in samples.map { String(format: "%.1f", Double($0) / 1024) }.joined(separator: " ") }
        say("\n4. the daemon's memory (VmRSS of `keyhold serve`, sampled every 5 s)")
        say("   at start (idle, fresh): \(mebibytes(memory.atStartKiB)); before the sustained run: \(mebibytes(memory.beforeKiB))")
        say(
            "   sustained \(options.sustainSeconds) s at \(options.connections) connections, half streaming: \(memory.sustainedRequests) requests, "
                + "\(Int(memory.sustainedRate)) req/s")
        say("     samples (MiB): \(list(memory.sustained))")
        say("     after: \(mebibytes(memory.afterKiB)); growth first→last sample \(growth(memory.sustained))")
        say(
            "     of which anonymous (RssAnon: heap, stacks; the rest is code mapped from the binary and libraries): "
                + "\(mebibytes(memory.anonymousBeforeKiB)) before, \(mebibytes(memory.anonymousAfterKiB)) after")
        say("   database unwritable for \(options.unwritableSeconds) s under the same load: \(memory.unwritableRequests) requests")
        say("     samples (MiB): \(list(memory.unwritable)); growth first→last sample \(growth(memory.unwritable))")
        say(
            "     usage rows: \(memory.rowsBefore) before, \(memory.rowsWhileUnwritable) while unwritable, journal backlog \(memory.backlog.files) "
                + "segments / \(memory.backlog.bytes / 1024) KiB on disk")
        say(
            "     writable again: \(memory.rowsAfter) rows (expected \(memory.rowsExpected): \(memory.rowsAfter - memory.rowsBefore) of "
                + "\(memory.unwritableRequests) written) after \(String(format: "%.1f", memory.drainSeconds)) s; RSS \(mebibytes(memory.afterUnwritableKiB))"
        )
    }

    static func growth(_ samples: [Int]) -> String {
        guard let first = samples.first, let last = samples.last else { return "?" }
        return String(format: "%+.1f MiB (max %.1f MiB)", Double(last - first) / 1024, Double(samples.max() ?? 0) / 1024)
    }

    static func printSideBySide(keyhold: [KindFigures], memory: MemoryFigures, litellm: LiteLLMOutcome?, litellmNote: String?, options: Options) {
        say("\n5. side by side (ms; \"+\" = added over the fake provider measured alongside; load average now \(MachineFacts.loadAverage))")
        let columns = ["fake", "Keyhold", "+Keyhold", "fake(ns)", "LiteLLM", "+LiteLLM"]
        say(pad("", 40) + columns.map { pad($0, 11, left: true) }.joined())
        for (index, figure) in keyhold.enumerated() {
            let other = litellm?.kinds.indices.contains(index) == true ? litellm?.kinds[index] : nil
            let rows: [(String, (KindFigures) -> Double, (KindFigures) -> Double, Int)] = [
                ("1 client median", { $0.directOne.median }, { $0.proxyOne.median }, 3),
                ("1 client p99", { $0.directOne.p99 }, { $0.proxyOne.p99 }, 3),
                ("\(options.connections) conns req/s", { $0.directMany.requestsPerSecond }, { $0.proxyMany.requestsPerSecond }, 0),
                ("\(options.connections) conns median", { $0.directMany.median }, { $0.proxyMany.median }, 2),
                ("\(options.connections) conns p99", { $0.directMany.p99 }, { $0.proxyMany.p99 }, 2),
                (
                    "\(options.connections) conns @\(options.pacedRate)/s median", { $0.directPaced?.median ?? .nan },
                    { $0.proxyPaced?.median ?? .nan }, 2
                ),
                ("\(options.connections) conns @\(options.pacedRate)/s p99", { $0.directPaced?.p99 ?? .nan }, { $0.proxyPaced?.p99 ?? .nan }, 2),
            ]
            for (label, directValue, proxyValue, digits) in rows {
                let isRate = label.hasSuffix("req/s")
                var cells = [directValue(figure), proxyValue(figure), isRate ? .nan : proxyValue(figure) - directValue(figure)]
                if let other {
                    cells += [directValue(other), proxyValue(other), isRate ? .nan : proxyValue(other) - directValue(other)]
                } else {
                    cells += [.nan, .nan, .nan]
                }
                say(pad("\(figure.kind.rawValue) \(label)", 40) + cells.map { pad(ms($0, digits), 11, left: true) }.joined())
            }
            let errors = "errors (1 client / conns)"
            let counts = [
                "\(figure.directOne.errors)/\(figure.directMany.errors)", "\(figure.proxyOne.errors)/\(figure.proxyMany.errors)", "",
                other.map { "\($0.directOne.errors)/\($0.directMany.errors)" } ?? "-",
                other.map { "\($0.proxyOne.errors)/\($0.proxyMany.errors)" } ?? "-",
                "",
            ]
            say(pad("\(figure.kind.rawValue) \(errors)", 40) + counts.map { pad($0, 11, left: true) }.joined())
        }
        say(
            pad("memory", 40) + pad("", 11)
                + pad(mebibytes(memory.sustained.max() ?? memory.afterKiB), 11, left: true) + pad("", 22)
                + pad(mebibytes(litellm?.rssPeakKiB), 11, left: true))
        say("   memory: Keyhold = peak VmRSS of `keyhold serve` over the sustained run; LiteLLM = peak VmRSS of its process tree under load")
        if let litellm {
            say(
                "   LiteLLM \(litellm.version): ready after \(String(format: "%.1f", litellm.startupSeconds)) s, \(mebibytes(litellm.rssReadyKiB)) "
                    + "idle, \(mebibytes(litellm.rssAfterKiB)) after the run; \(options.litellmRequests) requests of each kind at 1 client, "
                    + "\(options.litellmConcurrentRequests) at \(options.connections) connections")
        }
        if let litellmNote { say("   LiteLLM: \(litellmNote)") }
        say("\n   on for Keyhold: " + KeyholdSide.features.joined(separator: "; "))
        say("   LiteLLM: " + LiteLLMOutcome.features.joined(separator: "; "))

        let plain = keyhold.first { $0.kind == .plain }
        let addedMedian = keyhold.map { $0.proxyOne.median - $0.directOne.median }.max() ?? .nan
        let addedP99 = keyhold.map { $0.proxyMany.p99 - $0.directMany.p99 }.max() ?? .nan
        let addedPacedP99 = keyhold.map { ($0.proxyPaced?.p99 ?? .nan) - ($0.directPaced?.p99 ?? .nan) }.max() ?? .nan
        let rate = keyhold.map(\.proxyMany.requestsPerSecond).min() ?? .nan
        let peak = Double(max(memory.sustained.max() ?? 0, memory.unwritable.max() ?? 0)) / 1024
        let flat = [memory.sustained, memory.unwritable].allSatisfy { samples in
            guard let first = samples.first, let last = samples.last else { return false }
            return Double(last - first) / 1024 < 4
        }
        _ = plain
        say("\n   targets (issue 4), worst of the two kinds:")
        say("     added median at 1 client <= 0.3 ms:        \(ms(addedMedian)) ms  \(addedMedian <= 0.3 ? "met" : "MISSED")")
        say(
            "     added p99 at \(options.connections) connections <= 5 ms, paced at \(options.pacedRate) req/s: \(ms(addedPacedP99, 2)) ms  "
                + (addedPacedP99 <= 5 ? "met" : "MISSED"))
        say(
            "       and saturated (as fast as each side answers): \(ms(addedP99, 2)) ms  \(addedP99 <= 5 ? "met" : "MISSED")"
                + (options.pinDaemon == nil
                    ? " (closed loop on shared CPUs: the added latency is about connections / CPUs x the proxy's CPU time per request)"
                    : " (closed loop, the proxy on its own CPUs)"))
        say("     req/s at \(options.connections) connections, caps on >= 2000: \(Int(rate))  \(rate >= 2000 ? "met" : "MISSED")")
        say(
            "     memory < 64 MiB and flat (<4 MiB growth):  peak \(String(format: "%.1f", peak)) MiB  \(peak < 64 && flat ? "met" : "MISSED")"
                + " (over \(options.sustainSeconds) s; the issue asks for 600)")
        let written = memory.rowsAfter >= memory.rowsExpected
        say("     usage written once writable again:        \(written ? "met" : "MISSED") (\(memory.rowsAfter)/\(memory.rowsExpected) rows)")
    }
}
