import ArgumentParser
import BenchmarkSupport
import Foundation
import Glibc
import KeyholdSandbox
import KeyholdTesting

// What the sandbox boundary adds to an agent's requests. One program (client.py: keep-alive, sequential 1 KB POSTs,
// each timed) runs inside real sandboxes, through Keyhold's paths, and on the host, direct; rounds alternate.
//   BYOK: HTTPS to a TLS provider through the egress gateway, by name (SNI route) and through HTTPS_PROXY (CONNECT),
//         against the same requests straight to the provider.
//   managed: the metering proxy at the sandbox's http://127.0.0.1:8787 against the proxy's loopback TCP port.
//   brokered: a BYOK tenant's own key through the broker at its sandbox's http://127.0.0.1:8787, against managed.
//   secret: HTTPS by name to a host that carries a brokered secret (TLS terminated by the gateway, the secret written
//           in), against the same requests spliced (sni); and the TLS handshake of a new connection on both paths.
// Usage: keyhold-bench-boundary [--requests N] [--rounds N]

/// The command line.
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-boundary", abstract: "What the sandbox boundary adds to an agent's requests.")

    @Option(help: "Timed requests of each mode in each round.")
    var requests = 2000
    @Option(help: "Rounds (the sandboxes restart in each).")
    var rounds = 5

    func validate() throws {
        try require(requests, atLeast: 100, for: "--requests")
        try require(rounds, atLeast: 1, for: "--rounds")
    }
}
let arguments = Arguments.parseOrExit()
let (requests, rounds) = (arguments.requests, arguments.rounds)

print(
    """
    keyhold-bench-boundary
    machine: nproc \(ProcessInfo.processInfo.activeProcessorCount) (\(MachineFacts.cpuModel)), kernel \(MachineFacts.kernel)
    build: \(MachineFacts.build); keyhold binary: \(BuildProducts.keyhold); load average at start: \(MachineFacts.loadAverage)
    """)
print(
    """
    method: \(rounds) rounds; in each, the sandboxes restart and client.py (Python's http.client, one keep-alive connection,
      \(requests) timed requests after 50 untimed, 1 KB JSON bodies) runs in a BYOK sandbox (modes sni, connect), in a
      managed sandbox (mode managed), then on the host (direct to the TLS provider; managed to the proxy's loopback port).
      Plans' cpu_quota raised to 200% so that the sandbox's CPU quota does not throttle the client. Latencies in µs;
      figures are the medians of the rounds' medians (p99: median of the rounds' p99).
    """)

let setup: BoundarySetup
do {
    setup = try await BoundarySetup(requests: requests)
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-boundary: \(error)\n".utf8))
    exit(1)
}
let signalSources = CleanupOnSignal.install(program: "keyhold-bench-boundary") { [setup] in setup.tearDown() }

var samples: [String: [(median: Double, p99: Double)]] = [:]
do {
    for round in 1...rounds {
        var results = try setup.sandboxRound()
        results += try setup.hostRound(requests: requests)
        for (mode, median, p99) in results { samples[mode, default: []].append((median, p99)) }
        print("round \(round): " + results.map { "\($0.0) \(String(format: "%.0f", $0.1))" }.joined(separator: ", "))
    }
} catch {
    FileHandle.standardError.write(Data("keyhold-bench-boundary: \(error)\n\(setup.daemonLogTail)\n".utf8))
    setup.tearDown()
    exit(1)
}
setup.tearDown()

@MainActor func figure(_ mode: String) -> (median: Double, p99: Double) {
    let rows = samples[mode] ?? []
    return (Percentiles.median(rows.map(\.median)), Percentiles.median(rows.map(\.p99)))
}
print("\n" + pad("path", 58) + pad("median", 10, left: true) + pad("p99", 10, left: true))
let labels = [
    ("direct", "BYOK: host -> TLS provider, direct"),
    ("sni", "BYOK: sandbox -> gateway by name (SNI) -> provider"),
    ("connect", "BYOK: sandbox -> gateway by HTTPS_PROXY (CONNECT)"),
    ("managed-loopback", "managed: host -> proxy's loopback TCP port"),
    ("managed", "managed: sandbox -> proxy at its 127.0.0.1:8787"),
    ("brokered", "BYOK brokered: sandbox -> broker at its 127.0.0.1:8787"),
    ("secret", "BYOK brokered secret: sandbox -> gateway, TLS terminated"),
    ("handshake-sni", "new connection + TLS handshake, spliced (sni)"),
    ("handshake-secret", "new connection + TLS handshake, terminated"),
]
for (mode, label) in labels {
    let value = figure(mode)
    print(pad(label, 58) + pad(String(format: "%.1f", value.median), 10, left: true) + pad(String(format: "%.1f", value.p99), 10, left: true))
}
let direct = figure("direct").median
for (mode, name) in [("sni", "by name"), ("connect", "through HTTPS_PROXY")] {
    let added = (figure(mode).median - direct) / 1000
    print(String(format: "BYOK egress %@: %+.3f ms median added; target at most 0.3 ms -> %@", name, added, added <= 0.3 ? "met" : "NOT met"))
}
let managedAdded = (figure("managed").median - figure("managed-loopback").median) / 1000
print(
    String(
        format: "managed in-sandbox path: %+.3f ms median added; target at most 0.1 ms -> %@", managedAdded, managedAdded <= 0.1 ? "met" : "NOT met"))
let brokeredAdded = (figure("brokered").median - figure("managed").median) / 1000
print(
    String(
        format: "brokered key against the managed path (both in-sandbox): %+.3f ms median added; target at most 0.1 ms -> %@", brokeredAdded,
        brokeredAdded <= 0.1 ? "met" : "NOT met"))
let secretAdded = (figure("secret").median - figure("sni").median) / 1000
print(
    String(
        format: "brokered secret, terminated against spliced (1 KB HTTPS, keep-alive): %+.3f ms median added; target at most 1 ms -> %@",
        secretAdded, secretAdded <= 1 ? "met" : "NOT met"))
print(
    String(
        format: "TLS handshake of a new connection: %.3f ms terminated against %.3f ms spliced (%+.3f ms)", figure("handshake-secret").median / 1000,
        figure("handshake-sni").median / 1000, (figure("handshake-secret").median - figure("handshake-sni").median) / 1000))
print("cleaned up: daemon, units and private systemd stopped")
_ = signalSources
