import BenchmarkSupport
import Foundation
import Glibc

/// CPU affinity for the two sides of the benchmark: the daemon on some CPUs, the load generator and the fake
/// provider (one process) on others, so the proxy's figures do not include the CPU it takes from them.
enum Pinning {
    /// Parses a CPU list as `taskset -c` takes it: `1`, `0-1`, `2,3`.
    static func cpus(_ text: String, flag: String) throws(BenchError) -> [Int32] {
        var cpus: [Int32] = []
        let available = Int32(sysconf(Int32(_SC_NPROCESSORS_CONF)))
        for part in text.split(separator: ",") {
            let bounds = part.split(separator: "-", maxSplits: 1).map { Int32($0) }
            guard bounds.allSatisfy({ $0 != nil }), let low = bounds.first ?? nil, let high = bounds.last ?? nil, low <= high else {
                throw BenchError("\(flag) takes a CPU list such as 1, 0-1 or 2,3 (got '\(text)')")
            }
            guard low >= 0, high < available else { throw BenchError("\(flag): this machine has CPUs 0-\(available - 1) (got '\(text)')") }
            cpus += Array(low...high)
        }
        guard !cpus.isEmpty else { throw BenchError("\(flag) takes a CPU list such as 1, 0-1 or 2,3") }
        return cpus
    }

    /// glibc's `sched_setaffinity`, which Swift's Glibc module leaves out (it is declared under `_GNU_SOURCE`).
    private typealias SetAffinity = @convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32
    private static let setAffinity: SetAffinity? = dlsym(nil, "sched_setaffinity").map { unsafeBitCast($0, to: SetAffinity.self) }

    /// Pins one thread (0: the calling one); processes it starts afterwards inherit the mask.
    static func pin(thread: pid_t, to cpus: [Int32]) throws(BenchError) {
        guard let setAffinity else { throw BenchError("cannot pin: sched_setaffinity is not in this C library") }
        var mask = [UInt64](repeating: 0, count: 16)  // a cpu_set_t: 1,024 bits
        for cpu in cpus { mask[Int(cpu) / 64] |= 1 << UInt64(cpu % 64) }
        let result = mask.withUnsafeBytes { setAffinity(thread, $0.count, $0.baseAddress!) }
        guard result == 0 else {
            throw BenchError("cannot pin thread \(thread) to CPUs \(cpus): \(String(cString: strerror(errno)))")
        }
    }

    /// Pins every thread of this process (the load generator's loops, the fake provider's, the task pool's).
    static func pinThisProcess(to cpus: [Int32]) throws(BenchError) {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
        for thread in threads.compactMap({ pid_t($0) }) { try pin(thread: thread, to: cpus) }
    }
}
