import Foundation
import KeyholdCore
import Testing

@testable import KeyholdProxy

/// The in-memory cap ledger: the requests-per-minute window and reservations.
struct CapLedgerTests {
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
