import Foundation
import Glibc

/// What a benchmark's header says about the machine and the build, and small reads of `/proc`.
public enum MachineFacts {
    /// The kernel release (`uname -r`).
    public static var kernel: String {
        var name = utsname()
        uname(&name)
        return withUnsafeBytes(of: &name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// The CPU model from `/proc/cpuinfo`.
    public static var cpuModel: String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }?.split(separator: ":").last ?? "?"
        return model.trimmingCharacters(in: .whitespaces)
    }

    /// `debug` or `release`: how the benchmark itself was built.
    public static var build: String {
        #if DEBUG
        "debug"
        #else
        "release"
        #endif
    }

    /// The 1, 5 and 15 minute load averages.
    public static var loadAverage: String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// `VmRSS` of `pid` in KiB.
    public static func residentKiB(of pid: Int32) -> Int? { statusKiB("VmRSS:", of: pid) }

    /// The anonymous part of the resident set (heap, stacks): without the code and libraries mapped from files.
    public static func anonymousKiB(of pid: Int32) -> Int? { statusKiB("RssAnon:", of: pid) }

    private static func statusKiB(_ field: String, of pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) })
        else { return nil }
        return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
    }
}
