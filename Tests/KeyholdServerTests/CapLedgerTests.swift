import Foundation
import KeyholdCore
import KeyholdTestTraits
import Testing

@testable import KeyholdProxy

/// The in-memory cap ledger: the requests-per-minute window and reservations.
@Suite(.offCooperativePool) struct CapLedgerTests {
    static let caps = Caps(tokensPerDay: 1_000, tokensPerMonth: 10_000, requestsPerMinute: 3, usdPerMonth: 10, defaultMaxTokens: 10)

    @Test func theMinuteWindowRefusesTheFourthRequestUntilTheFirstLeavesIt() throws {
        let ledger = CapLedger()
        let start = Date(timeIntervalSince1970: 1_800_000_000.2)
        func reserve(after seconds: Double) -> Result<Reservation, CapRefusal> {
            ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 1, picoUSD: 1, now: start.addingTimeInterval(seconds))
        }
        for seconds in [0, 0.5, 10] { _ = try reserve(after: seconds).get() }
        guard case .failure(let refusal) = reserve(after: 20) else { Issue.record("a fourth request in the minute passed"); return }
        #expect(refusal.message.contains("requests_per_minute cap reached: 3 of 3"), "\(refusal.message)")
        #expect(refusal.retryAfterSeconds == 40, "the first second's requests leave the window in 40 s")
        #expect(throws: CapRefusal.self) { try reserve(after: 59.5).get() }
        _ = try reserve(after: 60).get()  // the two of the first second left
        _ = try reserve(after: 60.1).get()
        #expect(throws: CapRefusal.self) { try reserve(after: 60.2).get() }
        _ = try reserve(after: 200).get()  // a quiet spell empties the window
    }

    @Test func reservationsHoldTheCapUntilTheySettle() throws {
        let ledger = CapLedger()
        let held = try ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 900, picoUSD: 1).get()
        #expect(throws: CapRefusal.self) { try ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 200, picoUSD: 1).get() }
        ledger.settle(held, tokens: 100, picoUSD: 1)
        _ = try ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 200, picoUSD: 1).get()
    }

    @Test func aTenantThatLeftThisHostIsLoadedAgainWithWhatItUsedElsewhere() throws {
        let ledger = CapLedger()
        let now = Date()
        let window = { (tokens: Int) in
            UsageWindow(day: CapLedger.day(now), month: CapLedger.month(now), tokensToday: tokens, tokensThisMonth: tokens)
        }
        ledger.load(1, window: window(100))
        let inFlight = try ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 50, picoUSD: 1).get()
        // The tenant moves away and back; meanwhile it used 850 tokens on another host (read from the database).
        ledger.forget(1)
        ledger.load(1, window: window(950))
        // The old request settles late: its usage reaches the database through the journal, not this window twice.
        ledger.settle(inFlight, tokens: 50, picoUSD: 1)
        #expect(ledger.snapshot(1)?.tokensToday == 950 && ledger.snapshot(1)?.reservedTokens == 0)
        #expect(throws: CapRefusal.self) { try ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 60, picoUSD: 1).get() }
        _ = try ledger.reserve(tenantID: 1, caps: Self.caps, tokens: 50, picoUSD: 1).get()
    }
}

/// Caps that clamp: a request whose whole output the caps' remainder cannot cover is lowered to what remains.
struct CapClampTests {
    /// 1,000 tokens a day, USD 10 a month; clamps down to 50 output tokens at the least.
    static let caps = Caps(
        tokensPerDay: 1_000, tokensPerMonth: 10_000, requestsPerMinute: 100, usdPerMonth: 10, defaultMaxTokens: 100, minOutputTokens: 50)

    static func ask(input: Int = 100, output: Int, picoPerToken: Double = 0) -> CapAsk {
        CapAsk(inputTokens: input, outputTokens: output, inputPicoUSD: 0, picoUSDPerOutputToken: picoPerToken)
    }

    @Test func aRequestLargerThanWhatRemainsIsClampedToItAndReservesThat() throws {
        let ledger = CapLedger()
        let held = try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(output: 64_000)).get()
        #expect(held.clampedFrom == 64_000 && held.outputTokens == 900 && held.tokens == 1_000)
        // Nothing is left: the next is refused (less than min_output_tokens remains), not clamped to zero.
        guard case .failure(let refusal) = ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(output: 64_000)) else {
            Issue.record("a request was let through with nothing left")
            return
        }
        #expect(refusal.cap == .tokensPerDay && refusal.message.contains("resets at"), "\(refusal.message)")
        // A request that fits whole is not clamped.
        let other = try ledger.reserve(tenantID: 2, caps: Self.caps, ask: Self.ask(output: 200)).get()
        #expect(other.clampedFrom == nil && other.outputTokens == 200)
    }

    @Test func concurrentRequestsClampAgainstWhatTheOthersHold() throws {
        let ledger = CapLedger()
        let first = try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(output: 500)).get()
        let second = try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(output: 500)).get()
        #expect(first.clampedFrom == nil && second.clampedFrom == 500 && second.outputTokens == 300)
        #expect(first.tokens + second.tokens == 1_000, "together they hold exactly the cap")
        #expect(throws: CapRefusal.self) { try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(input: 1, output: 100)).get() }
        // The first settles using less than it held: the room comes back.
        ledger.settle(first, tokens: 150, picoUSD: 0)
        let third = try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(output: 1_000)).get()
        #expect(third.clampedFrom == 1_000 && third.outputTokens == 1_000 - 150 - second.tokens - 100)
    }

    @Test func dollarsClampAtTheModelsOutputPrice() throws {
        // USD 10 left; output at 1e9 pico-USD (USD 0.001) a token: 10,000 tokens' worth, but only 9,900 tokens.
        let caps = Caps(
            tokensPerDay: 1_000_000, tokensPerMonth: 1_000_000, requestsPerMinute: 100, usdPerMonth: 10, defaultMaxTokens: 100, minOutputTokens: 50)
        let ledger = CapLedger()
        let held = try ledger.reserve(tenantID: 1, caps: caps, ask: Self.ask(output: 64_000, picoPerToken: 1e9)).get()
        #expect(held.clampedFrom == 64_000 && held.outputTokens == 10_000 && held.picoUSD == 10_000_000_000_000)
    }

    @Test func belowTheMinimumOrWithClampingOffTheRequestIsRefused() throws {
        let ledger = CapLedger()
        _ = try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(input: 940, output: 10)).get()
        // 50 tokens left, 100 of input: nothing for output.
        #expect(throws: CapRefusal.self) { try ledger.reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(output: 4_000)).get() }
        var refuse = Self.caps
        refuse.onCap = .refuse
        #expect(throws: CapRefusal.self) { try CapLedger().reserve(tenantID: 1, caps: refuse, ask: Self.ask(output: 64_000)).get() }
        // A request asking less than the minimum clamps only if its whole output fits.
        let small = try CapLedger().reserve(tenantID: 1, caps: Self.caps, ask: Self.ask(input: 900, output: 40)).get()
        #expect(small.clampedFrom == nil && small.outputTokens == 40)
    }
}
