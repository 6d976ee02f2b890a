import Foundation
import KeyholdCore
import Testing

/// How a plan's model entries match the ids clients send: exact ids, dated snapshots, patterns.
struct ModelMatchTests {
    static let plan = """
        id: current
        name: Current
        price_usd_per_month: 39
        kind: managed
        models:
          - id: claude-sonnet-4-5
            provider: anthropic
            input_usd_per_mtok: 3
            output_usd_per_mtok: 15
            price_date: 2025-11-24
          - id: gpt-5
            provider: openai
            input_usd_per_mtok: 1.25
            output_usd_per_mtok: 10
          - id: gpt-5-mini
            provider: openai
            input_usd_per_mtok: 0.25
            output_usd_per_mtok: 2
          - id: o4-mini-family
            provider: openai
            pattern: "o4-mini*"
            input_usd_per_mtok: 1.1
            output_usd_per_mtok: 4.4
        caps:
          tokens_per_day: 1000
          tokens_per_month: 10000
          requests_per_minute: 10
          usd_per_month: 5
          default_max_tokens: 100
        sandbox:
          profile: strict
          memory_max: 256M
          cpu_quota_percent: 50
          tasks_max: 64
        """

    @Test func anEntryMatchesItselfItsDatedSnapshotsAndItsPatternOnly() throws {
        let plan = try PlanLoader.parse(Self.plan.replacingOccurrences(of: "o4-mini-family", with: "o4-mini"), file: "current.yaml")
        func entry(_ model: String, _ provider: Provider) -> String? { plan.model(matching: model, provider: provider)?.id }
        #expect(entry("claude-sonnet-4-5", .anthropic) == "claude-sonnet-4-5")
        #expect(entry("claude-sonnet-4-5-20250929", .anthropic) == "claude-sonnet-4-5")
        #expect(entry("gpt-5-2025-08-07", .openai) == "gpt-5")
        #expect(entry("gpt-5-mini", .openai) == "gpt-5-mini", "an exact id wins over another entry's snapshot-like prefix")
        #expect(entry("gpt-5-mini-2025-08-07", .openai) == "gpt-5-mini")
        #expect(entry("o4-mini-deep-research", .openai) == "o4-mini", "the pattern")
        // Not a snapshot: another model that shares the prefix, a malformed date, the wrong provider.
        #expect(entry("gpt-5-nano", .openai) == nil)
        #expect(entry("gpt-5-codex", .openai) == nil)
        #expect(entry("claude-sonnet-4-5-2025092", .anthropic) == nil)
        #expect(entry("claude-sonnet-4-5-2025-0929", .anthropic) == nil)
        #expect(entry("claude-sonnet-4-5", .openai) == nil)
        #expect(plan.models.first?.priceDate == "2025-11-24")
    }

    @Test(arguments: [
        ("\"*\"", "at least 4 characters before its first '*'"),
        ("\"gpt*\"", "at least 4 characters before its first '*'"),
        ("\"*-mini\"", "at least 4 characters before its first '*'"),
        ("\"o3-mini*\"", "does not match the entry's own id 'o4-mini-family'"),
    ])
    func aPatternThatCouldMatchEveryModelIsRefusedWithItsFileAndLine(pattern: String, problem: String) {
        let text = Self.plan.replacingOccurrences(of: "\"o4-mini*\"", with: pattern)
        #expect {
            try PlanLoader.parse(text, file: "current.yaml")
        } throws: { error in
            let message = "\(error)"
            return message.contains("current.yaml:21") && message.contains("pattern") && message.contains(problem)
        }
    }

    @Test func capsClampByDefaultAndTheirFieldsAreChecked() throws {
        let caps = try #require(try PlanLoader.parse(Self.plan, file: "current.yaml").caps)
        #expect(caps.onCap == .clamp && caps.minOutputTokens == Caps.defaultMinOutputTokens)
        let refuse = Self.plan.replacingOccurrences(
            of: "  default_max_tokens: 100", with: "  default_max_tokens: 100\n  on_cap: refuse\n  min_output_tokens: 32")
        let parsed = try #require(try PlanLoader.parse(refuse, file: "current.yaml").caps)
        #expect(parsed.onCap == .refuse && parsed.minOutputTokens == 32)
        for (field, problem) in [("on_cap: trim", "expected clamp or refuse"), ("min_output_tokens: 0", "min_output_tokens")] {
            let bad = Self.plan.replacingOccurrences(of: "  default_max_tokens: 100", with: "  default_max_tokens: 100\n  \(field)")
            #expect {
                try PlanLoader.parse(bad, file: "current.yaml")
            } throws: { error in
                "\(error)".contains(problem)
            }
        }
        let badDate = Self.plan.replacingOccurrences(of: "price_date: 2025-11-24", with: "price_date: last week")
        #expect(throws: PlanError.self) { try PlanLoader.parse(badDate, file: "current.yaml") }
    }
}
