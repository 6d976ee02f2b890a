import BenchmarkSupport
import Foundation
import Glibc
import KeyholdClient

/// The header: this machine and the method.
enum Machine {
    static func printHeader(_ options: Options) {
        let systemd = (try? Spawn.run(["/lib/systemd/systemd", "--version"]))?.output.split(separator: "\n").first ?? "?"
        print(
            """
            keyhold-bench-sandbox: sandbox start latency and density (issue 3, "Benchmark")
            machine: \(ProcessInfo.processInfo.activeProcessorCount) CPUs (\(MachineFacts.cpuModel)), \
            \(ProcessInfo.processInfo.physicalMemory >> 20) MiB, kernel \(MachineFacts.kernel), \(systemd)
            build: \(MachineFacts.build) (this program, keyhold and keyhold-exec from the same build directory)
            method: one run; (a) the floor starts the byok plan's hardened unit (SandboxUnit's properties, profile
              default) with ExecStart the agent itself, Type=exec, no keyhold-exec, no pipe: (a1) through D-Bus
              (SystemdManager.startTransientUnit: the call, its JobRemoved, then 7 bus calls reading the unit's status),
              (a2) `nsenter -t <systemd> -m -p systemd-run -p ...` (includes spawning nsenter and systemd-run);
              (b) POST /v1/tenants/bench/sandbox/start to the real `keyhold serve` over its Unix socket (AdminClient),
              then polling /proc/<main pid>/comm until it is no longer keyhold-exec (key read, seccomp loaded, agent
              exec'd). Agent: /bin/sleep infinity. Kinds interleaved, order rotated each round; each unit stopped
              untimed before the next start. ContinuousClock; ms.
            """)
    }
}
