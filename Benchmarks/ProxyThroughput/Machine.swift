import BenchmarkSupport
import Foundation
import Glibc
import KeyholdTesting

/// The header (this machine, the build, the method) and the memory of a process tree.
enum Machine {
    static func printHeader(_ options: Options) {
        say(
            """
            keyhold-bench-proxy: the metering proxy's added latency, throughput and memory, and LiteLLM's (issue 4, "Benchmark")
            machine: nproc \(ProcessInfo.processInfo.activeProcessorCount) (\(MachineFacts.cpuModel)), \
            \(ProcessInfo.processInfo.physicalMemory >> 20) MiB, kernel \(MachineFacts.kernel)
            build: \(MachineFacts.build); keyhold binary: \(BuildProducts.keyhold)
            load average at start: \(MachineFacts.loadAverage)
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
            cpus: \(pinning(options))
            """)
    }

    static func pinning(_ options: Options) -> String {
        guard let daemon = options.pinDaemon, let load = options.pinLoad else {
            return "shared: load generator, fake provider and daemon all run on every CPU"
        }
        let list = { (cpus: [Int32]) in cpus.map(String.init).joined(separator: ",") }
        return "pinned: keyhold serve on CPU \(list(daemon)), load generator and fake provider on CPU \(list(load)) (LiteLLM's side not pinned)"
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

    /// `VmRSS` of `pid` and its descendants together, in KiB.
    static func treeResidentKiB(of pid: Int32) -> Int? {
        let sizes = tree(of: pid).compactMap(MachineFacts.residentKiB(of:))
        return sizes.isEmpty ? nil : sizes.reduce(0, +)
    }
}

/// Milliseconds with `digits` decimals, or "-".
func ms(_ value: Double, _ digits: Int = 3) -> String {
    value.isFinite ? String(format: "%.\(digits)f", value) : "-"
}

/// A line on stdout, written at once (not held in a buffer when stdout is a file or a pipe).
func say(_ line: String = "") {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
