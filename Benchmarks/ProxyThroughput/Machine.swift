import Foundation
import Glibc
import KeyholdTesting

/// The header (this machine, the build, the method) and small /proc reads.
enum Machine {
    static func printHeader(_ options: Options) {
        var name = utsname()
        uname(&name)
        let kernel = withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last ?? "?"
        #if DEBUG
        let build = "debug"
        #else
        let build = "release"
        #endif
        say(
            """
            keyhold-bench-proxy: the metering proxy's added latency, throughput and memory, and LiteLLM's (issue 4, "Benchmark")
            machine: nproc \(ProcessInfo.processInfo.activeProcessorCount) (\(model.trimmingCharacters(in: .whitespaces))), \
            \(ProcessInfo.processInfo.physicalMemory >> 20) MiB, kernel \(kernel)
            build: \(build); keyhold binary: \(BuildProducts.keyhold)
            load average at start: \(loadAverage)
            method: one process drives everything with a raw SwiftNIO HTTP/1.1 client (keep-alive, TCP_NODELAY, one request in
              flight per connection, latency = request written to last byte of the answer, ContinuousClock). The fake provider
              (KeyholdTesting.FakeProvider, Hummingbird, backlog 1024) runs in this process; Keyhold is the real `keyhold serve`
              daemon (--no-systemd, --proxy on 127.0.0.1). One client: \(options.requests) timed requests of each kind after \
            \(options.warmup) warm-up,
              to the fake directly and through the proxy alternately (added = proxy - direct). Concurrent: \(options.connections) \
            connections,
              \(options.concurrentRequests) requests of each kind per target after 5 warm-up requests per connection
              (LiteLLM: 2).
              Chat completion: gpt-4o-mini, 2 messages, max_tokens 64; streaming = "stream": true (4 content deltas + role,
              finish, [DONE]; Keyhold adds stream_options.include_usage upstream and strips the usage chunk).
            """)
    }

    static var loadAverage: String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// `VmRSS` of `pid` in KiB.
    static func residentKiB(of pid: Int32) -> Int? { statusKiB("VmRSS:", of: pid) }

    /// The anonymous part of the resident set (heap, stacks): without the code and libraries mapped from files.
    static func anonymousKiB(of pid: Int32) -> Int? { statusKiB("RssAnon:", of: pid) }

    private static func statusKiB(_ field: String, of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }

    /// `pid` and all its descendants.
    static func tree(of pid: Int32) -> [Int32] {
        var all = [pid]
        var index = 0
        while index < all.count {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(all[index])/task")) ?? []
            for task in tasks {
                let children = (try? String(contentsOfFile: "/proc/\(all[index])/task/\(task)/children", encoding: .utf8)) ?? ""
                all += children.split(separator: " ").compactMap { Int32($0) }
            }
            index += 1
        }
        return all
    }

    /// The summed `VmRSS` of `pid` and its descendants, in KiB.
    static func treeResidentKiB(of pid: Int32) -> Int? {
        let sizes = tree(of: pid).compactMap(residentKiB(of:))
        return sizes.isEmpty ? nil : sizes.reduce(0, +)
    }
}

/// A size in KiB as MiB with one decimal.
func mebibytes(_ kib: Int?) -> String {
    kib.map { String(format: "%.1f MiB", Double($0) / 1024) } ?? "?"
}

/// `text` padded with spaces to `width` (on the left when `left`).
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? fill + text : text + fill
}

/// Milliseconds with `digits` decimals, or "-".
func ms(_ value: Double, _ digits: Int = 3) -> String {
    value.isFinite ? String(format: "%.\(digits)f", value) : "-"
}

/// A line on stdout, written at once (not held in a buffer when stdout is a file or a pipe).
func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
