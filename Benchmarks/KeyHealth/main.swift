// keyhold-bench-keyhealth: scheduled key checks at scale, against the real daemon and a fake provider on loopback.
//
// Stores N keys (half anthropic, half openai) for N tenants on a BYOK plan with `revalidate_every: PERIOD`, none
// checked yet, then starts `keyhold serve --key-check-rate RATE` and watches the fake provider for 1.25 periods:
// how many keys were checked within the period, and the most checks any provider received in one second (the
// budget is RATE). Each key's first check is spread over its period, so N/PERIOD per second is the mean load.
//
// Usage: keyhold-bench-keyhealth [--keys N] [--period SECONDS] [--rate N]
import ArgumentParser
import BenchmarkSupport
import Foundation
import Glibc
import KeyholdCore
import KeyholdOrchestration
import KeyholdServer
import KeyholdStore
import KeyholdTesting
import KeyholdVault

/// The command line.
struct Arguments: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keyhold-bench-keyhealth", abstract: "Scheduled key checks against the providers' rate limits.")

    @Option(help: "Keys checked.")
    var keys = 10_000
    @Option(help: ArgumentHelp("The plans' revalidate_every.", valueName: "seconds"))
    var period = 60
    @Option(help: "--key-check-rate: checks a second per provider.")
    var rate = 100

    func validate() throws {
        try require(keys, atLeast: 2, for: "--keys")
        try require(period, atLeast: 5, for: "--period")
        try require(rate, atLeast: 1, for: "--rate")
    }
}
let arguments = Arguments.parseOrExit()
let (keys, period, rate) = (arguments.keys, arguments.period, arguments.rate)
print("keyhold-bench-keyhealth: \(MachineFacts.cpuModel), \(ProcessInfo.processInfo.activeProcessorCount) cores, \(MachineFacts.build)")
print("\(keys) keys, revalidate_every: \(period)s, --key-check-rate \(rate) per provider (mean need: \(keys / 2 / period)/s per provider)")

let keyCount = keys

func anthropicKey(_ index: Int) -> String { "sk-ant-bench-\(index)" }
func openAIKey(_ index: Int) -> String { "sk-bench-\(index)" }

let provider = try await FakeProvider.start(
    configuration: .init(
        openAIKeys: Set((0..<keys).filter { $0 % 2 == 1 }.map(openAIKey)), anthropicKeys: Set((0..<keys).filter { $0 % 2 == 0 }.map(anthropicKey))))
let keyhold = try KeyholdHarness()
let plans = keyhold.root + "/plans"
try FileManager.default.createDirectory(atPath: plans, withIntermediateDirectories: true)
try """
id: checked
name: Checked
price_usd_per_month: 15
kind: byok
providers: [anthropic, openai]
revalidate_every: \(period)s
sandbox:
  profile: default
  memory_max: 512M
  cpu_quota_percent: 50
  tasks_max: 64
""".write(toFile: plans + "/checked.yaml", atomically: true, encoding: .utf8)

// Stored as `key set --no-validate` would store them, in batches: never checked.
let populated = ContinuousClock.now
let vault = try StateDirectory(path: keyhold.stateDirectory).loadVault()
let store = try keyhold.openStore()
for batch in stride(from: 0, to: keyCount, by: 500) {
    try await store.write { tx in
        for index in batch..<min(batch + 500, keyCount) {
            let tenant = try tx.insertTenant(name: try TenantName("t\(index)"), plan: "checked", agent: ["/bin/true"])
            let provider: Provider = index % 2 == 0 ? .anthropic : .openai
            let secret = SecretBytes(Array((index % 2 == 0 ? anthropicKey(index) : openAIKey(index)).utf8))
            let sealed = try vault.seal(secret, binding: KeyBinding(tenantID: tenant.id, provider: provider.rawValue, version: 1))
            _ = try tx.insertKeyVersion(tenantID: tenant.id, provider: provider, version: 1, sealed: sealed, baseURL: nil)
        }
    }
}
print("stored \(keys) keys in \(String(format: "%.1f", (ContinuousClock.now - populated) / .seconds(1))) s")

try keyhold.startDaemon(
    systemdBus: nil,
    extraArguments: [
        "--plans", plans, "--provider-base-url", "anthropic=\(provider.baseURL)", "--provider-base-url", "openai=\(provider.baseURL)",
        "--key-check-rate", String(rate),
    ])
let began = ContinuousClock.now
try await Task.sleep(for: .seconds(Double(period) * 1.25))
_ = keyhold.stopDaemon()

/// Each check's arrival, in seconds since the daemon started, per provider (the fake provider records every request).
let checks = provider.requests.filter { $0.path == "/v1/models" }
let anthropicTimes = checks.filter { $0.header("x-api-key") != nil }.map { ($0.receivedAt - began) / .seconds(1) }.sorted()
let openAITimes = checks.filter { $0.header("x-api-key") == nil }.map { ($0.receivedAt - began) / .seconds(1) }.sorted()

/// The most arrivals in any one-second window [t, t + 1).
func peak(_ times: [Double]) -> Int {
    var best = 0
    var start = 0
    for end in times.indices {
        while times[end] - times[start] >= 1.0 { start += 1 }
        best = max(best, end - start + 1)
    }
    return best
}
/// Distinct keys checked within the period (a key checked early in it may be checked again before its end).
let withinPeriod = Set(
    checks.filter { ($0.receivedAt - began) <= .seconds(period) }.map { $0.header("x-api-key") ?? $0.header("authorization") ?? "" }
).count
let total = checks.count
let health = try await store.read { tx in
    try tx.keysForRevalidation(checkedBefore: "9999", limit: keyCount + 10)
}
let healthy = health.filter { $0.health == .ok }.count
print(
    "distinct keys checked within the period (\(period) s): \(withinPeriod) of \(keys) (\(String(format: "%.1f", Double(withinPeriod) * 100 / Double(keys)))%)"
)
print("checks by \(Int(Double(period) * 1.25)) s: \(total) (second checks begin at 0.9 of a period); keys recorded ok: \(healthy)")
print("peak checks in one second: anthropic \(peak(anthropicTimes)), openai \(peak(openAITimes)) (budget \(rate) each)")
try await provider.stop()
