import ArgumentParser
import BenchmarkSupport
import Foundation
import KeyholdCore
import KeyholdOrchestration
import KeyholdSandbox
import KeyholdServer
import KeyholdStore
import KeyholdTesting
import KeyholdVault

// keyhold-bench-rotation: the rewrap rate of `keyhold kek rotate` and the time a key rotation takes beyond
// its readiness window, measured with the real daemon and CLI (and a real systemd for the rotation).
//
//   keyhold-bench-rotation [--keys N] [--rotations N] [--readiness-ms N]

/// The command line.
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keyhold-bench-rotation", abstract: "KEK rewrap rate and key rotation time.")

    @Option(help: "Key versions sealed before `keyhold kek rotate`.")
    var keys = 100_000
    @Option(help: "Key rotations timed.")
    var rotations = 10
    @Option(help: "The daemon's --readiness-window-ms.")
    var readinessMs = 500

    func validate() throws {
        try require(keys, atLeast: 1, for: "--keys")
        try require(rotations, atLeast: 1, for: "--rotations")
        try require(readinessMs, atLeast: 0, for: "--readiness-ms")
    }
}
let arguments = Arguments.parseOrExit()
let (keyCount, rotations, readinessMs) = (arguments.keys, arguments.rotations, arguments.readinessMs)

print("keyhold-bench-rotation: \(ProcessInfo.processInfo.activeProcessorCount) CPUs, \(keyCount) keys, \(rotations) rotations")

// 1. KEK rotation: seal `keyCount` key versions straight into a fresh database, then `keyhold kek rotate`.
do {
    let keyhold = try KeyholdHarness()
    let state = StateDirectory(path: keyhold.stateDirectory)
    let vault = try state.loadVault()
    let store = try Store.open(path: state.databasePath)
    let seeded = ContinuousClock.now
    try store.writeNow { tx in
        let tenant = try tx.insertTenant(name: try TenantName("bulk"), plan: "byok", agent: ["/bin/true"])
        for version in 1...keyCount {
            let binding = KeyBinding(tenantID: tenant.id, provider: "openai", version: version)
            let sealed = try vault.seal(SecretBytes(Array("sk-bench-\(version)".utf8)), binding: binding)
            _ = try tx.insertKeyVersion(
                tenantID: tenant.id, provider: .openai, version: version, sealed: sealed, baseURL: nil, state: .retired)
        }
    }
    print("seeded \(keyCount) sealed keys in \(ContinuousClock.now - seeded)")
    try keyhold.startDaemon(systemdBus: nil)
    let started = ContinuousClock.now
    let result = try keyhold.cli(["kek", "rotate"])
    let wall = (ContinuousClock.now - started) / .seconds(1)
    print("kek rotate: \(result.stdout.split(separator: "\n").first ?? "?")")
    print(String(format: "kek rotate wall time (CLI to answer): %.2f s, %.0f keys/s; target: 100,000 keys in < 10 s", wall, Double(keyCount) / wall))
    keyhold.stopDaemon()
}

// 2. Key rotation: the time beyond the readiness window, with a real systemd.
do {
    let systemd = try PrivateSystemd.hostOrPrivate(diesWithThisProcess: true)
    defer { try? systemd.stop() }
    let keyhold = try KeyholdHarness()
    var daemon = ["--readiness-window-ms", String(readinessMs)]
    if let journal = systemd.journalDirectory { daemon += ["--journal-directory", journal] }
    try keyhold.startDaemon(systemdBus: .some(systemd.busAddress), extraArguments: daemon)
    _ = try keyhold.cli(["tenant", "create", "bench", "--plan", "byok", "--agent", "/bin/sleep infinity"])
    _ = try keyhold.cli(["key", "set", "bench", "anthropic", "--no-validate"], input: Array("sk-ant-bench-0".utf8))
    _ = try keyhold.cli(["sandbox", "start", "bench"])
    var beyond: [Double] = []
    for index in stride(from: 1, through: rotations, by: 1) {
        let result = try keyhold.cli(["key", "rotate", "bench", "anthropic", "--no-validate", "--json"], input: Array("sk-ant-bench-\(index)".utf8))
        guard result.status == 0, let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any],
            let seconds = object["seconds"] as? Double
        else {
            print("rotation \(index) failed: \(result.stderr)")
            continue
        }
        beyond.append((seconds - Double(readinessMs) / 1000) * 1000)
    }
    keyhold.deleteTenants()  // the sandbox stops, and its agent's state directory goes with its tenant
    keyhold.stopDaemon()
    if !beyond.isEmpty {
        print(
            String(
                format: "key rotation beyond the %d ms readiness window: median %.1f ms, min %.1f ms, max %.1f ms (%d rotations)", readinessMs,
                Percentiles.median(beyond), beyond.min()!, beyond.max()!, beyond.count
            )
        )
    }
}
