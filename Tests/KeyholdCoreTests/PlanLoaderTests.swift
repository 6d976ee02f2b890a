import Foundation
import KeyholdCore
import Testing

@Suite struct PlanLoaderTests {
    static let plansDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("plans").path

    static let valid = """
        id: starter
        name: Starter
        price_usd_per_month: 15
        kind: byok
        providers: [anthropic, openai]
        sandbox:
          profile: default
          memory_max: 512M
          cpu_quota_percent: 50
          tasks_max: 64
        """

    @Test func theShippedPlansLoad() throws {
        let catalog = try PlanCatalog.load(directory: Self.plansDirectory)
        let byok = try catalog.plan("byok")
        #expect(byok.kind == .byok)
        #expect(byok.providers.contains(.anthropic))
        #expect(byok.alertThresholds == [50, 80, 100])
        let managed = try catalog.plan("managed")
        #expect(managed.kind == .managed)
        #expect(managed.caps?.requestsPerMinute == 60)
        #expect(managed.models.contains { $0.id == "gpt-4o-mini" && $0.cachedInputUSDPerMillion == 0.075 })
        #expect(managed.sandbox.memoryMaxBytes == 512 << 20)
        #expect(byok.keyDelivery == .environment && !byok.isBrokered)
        let brokered = try catalog.plan("byok-brokered")
        #expect(brokered.isBrokered && brokered.providers == [.anthropic, .openai, .openaiCompatible])
        #expect(try PlanLoader.parse(Self.valid + "\nkey_delivery: brokered", file: "starter.yaml").isBrokered)
    }

    @Test func aValidPlanParses() throws {
        let plan = try PlanLoader.parse(Self.valid, file: "starter.yaml")
        #expect(plan.id == "starter")
        #expect(plan.providers == [.anthropic, .openai])
        #expect(plan.caps == nil)
    }

    @Test(arguments: [
        (Self.valid.replacingOccurrences(of: "tasks_max: 64", with: "tasks_max: 64\n  swap: yes"), "starter.yaml:11: sandbox.swap: unknown field"),
        (
            Self.valid.replacingOccurrences(of: "price_usd_per_month: 15", with: "price_usd_per_month: cheap"),
            "starter.yaml:3: price_usd_per_month: expected a number"
        ),
        (Self.valid.replacingOccurrences(of: "name: Starter\n", with: ""), "starter.yaml:1: name: missing required field"),
        (Self.valid.replacingOccurrences(of: "kind: byok", with: "kind: premium"), "starter.yaml:4: kind: expected 'byok' or 'managed'"),
        (
            Self.valid.replacingOccurrences(of: "[anthropic, openai]", with: "[anthropic, mistral]"),
            "starter.yaml:5: providers: unknown provider 'mistral'"
        ),
        (Self.valid.replacingOccurrences(of: "memory_max: 512M", with: "memory_max: lots"), "starter.yaml:8: sandbox.memory_max: expected a size"),
        (
            Self.valid.replacingOccurrences(of: "tasks_max: 64", with: "tasks_max: \"64\""),
            "starter.yaml:10: sandbox.tasks_max: expected a whole number"
        ),
        (Self.valid.replacingOccurrences(of: "providers: [anthropic, openai]", with: "providers: [anthropic, openai"), "starter.yaml"),
        (
            Self.valid.replacingOccurrences(of: "kind: byok\nproviders: [anthropic, openai]", with: "kind: managed"),
            "starter.yaml:1: models: missing required field"
        ),
        (Self.valid + "\nrevalidate_every: often", "starter.yaml:11: revalidate_every: expected a duration"),
        (Self.valid + "\non_invalid_key: panic", "starter.yaml:11: on_invalid_key: expected one of keep, stop, fallback-managed"),
        (Self.valid + "\non_invalid_key: fallback-managed", "starter.yaml:11: fallback_plan: on_invalid_key: fallback-managed needs fallback_plan"),
        (Self.valid + "\nfallback_plan: managed", "starter.yaml:11: fallback_plan: on_invalid_key: fallback-managed needs"),
        (Self.valid + "\nfallback_max_per_month: 2", "starter.yaml:11: fallback_max_per_month: applies with on_invalid_key: fallback-managed only"),
        (
            Self.valid + "\non_invalid_key: fallback-managed\nfallback_plan: managed\nfallback_max_per_month: -1",
            "starter.yaml:13: fallback_max_per_month: expected a whole number ≥ 0"
        ),
        (Self.valid + "\n  warm_pool: -1", "starter.yaml:11: sandbox.warm_pool: expected a whole number ≥ 0"),
        (Self.valid + "\n  warm_pool: 257", "starter.yaml:11: sandbox.warm_pool: expected at most 256 units, found 257"),
        (Self.valid + "\n  warm_pool: 2\n  warm_pool_max_wait: 0", "starter.yaml:12: sandbox.warm_pool_max_wait: expected a duration"),
        (Self.valid + "\n  warm_pool_max_wait: 5m", "starter.yaml:11: sandbox.warm_pool_max_wait: set only with warm_pool: 1 or more"),
        (Self.valid + "\n  tmp_max: 1G", "starter.yaml:11: sandbox.tmp_max: expected a size from 1M up to memory_max (512M)"),
        (Self.valid + "\n  tmp_max: plenty", "starter.yaml:11: sandbox.tmp_max: expected a size"),
        (Self.valid + "\nkey_delivery: courier", "starter.yaml:11: key_delivery: expected one of environment, brokered, found 'courier'"),
        (
            Self.valid.replacingOccurrences(of: "[anthropic, openai]", with: "[anthropic, google]") + "\nkey_delivery: brokered",
            "starter.yaml:11: key_delivery: brokered delivery cannot serve provider 'google': its clients may send the key in the URL"
        ),
    ])
    func aMalformedPlanNamesTheFileTheLineAndTheField(text: String, expected: String) {
        #expect {
            try PlanLoader.parse(text, file: "starter.yaml")
        } throws: { error in
            "\(error)".hasPrefix(expected)
        }
    }

    @Test func tmpMaxDefaultsToAQuarterGigabyteOrTheMemoryLimit() throws {
        #expect(try PlanLoader.parse(Self.valid, file: "starter.yaml").sandbox.tmpMaxBytes == 256 << 20)
        #expect(try PlanLoader.parse(Self.valid + "\n  tmp_max: 16M", file: "starter.yaml").sandbox.tmpMaxBytes == 16 << 20)
        let small = Self.valid.replacingOccurrences(of: "memory_max: 512M", with: "memory_max: 64M")
        #expect(try PlanLoader.parse(small, file: "starter.yaml").sandbox.tmpMaxBytes == 64 << 20)
    }

    @Test func aWarmPoolParsesWithItsDefaultWait() throws {
        #expect(try PlanLoader.parse(Self.valid, file: "starter.yaml").sandbox.warmPool == nil)
        #expect(try PlanLoader.parse(Self.valid + "\n  warm_pool: 0", file: "starter.yaml").sandbox.warmPool == nil)
        let plan = try PlanLoader.parse(Self.valid + "\n  warm_pool: 3", file: "starter.yaml")
        #expect(plan.sandbox.warmPool == WarmPoolPolicy(size: 3, maxWaitSeconds: 600))
        let waiting = try PlanLoader.parse(Self.valid + "\n  warm_pool: 3\n  warm_pool_max_wait: 90s", file: "starter.yaml")
        #expect(waiting.sandbox.warmPool == WarmPoolPolicy(size: 3, maxWaitSeconds: 90))
    }

    @Test func keyHealthFieldsParseAndAFallbackMustBeAManagedPlan() throws {
        let plan = try PlanLoader.parse(
            Self.valid + "\nrevalidate_every: 6h\non_invalid_key: fallback-managed\nfallback_plan: managed", file: "starter.yaml")
        #expect(plan.keyHealth == KeyHealthPolicy(revalidateEverySeconds: 6 * 3600, onInvalidKey: .fallbackManaged, fallbackPlan: "managed"))
        #expect(plan.keyHealth.fallbackMaxPerMonth == KeyHealthPolicy.defaultFallbackMaxPerMonth)
        let bounded = try PlanLoader.parse(
            Self.valid + "\non_invalid_key: fallback-managed\nfallback_plan: managed\nfallback_max_per_month: 0", file: "starter.yaml")
        #expect(bounded.keyHealth.fallbackMaxPerMonth == 0, "0: never onto the platform's key")
        #expect(try PlanLoader.parse(Self.valid, file: "starter.yaml").keyHealth.revalidateEverySeconds == 86_400)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plans-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try (Self.valid + "\non_invalid_key: fallback-managed\nfallback_plan: starter").write(
            toFile: directory + "/starter.yaml", atomically: true, encoding: .utf8)
        #expect {
            try PlanCatalog.load(directory: directory)
        } throws: { error in
            "\(error)".contains("fallback_plan: 'starter' is not a managed plan")
        }
    }
}
