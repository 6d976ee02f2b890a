import Foundation
import KeyholdCore
import Synchronization

/// A tenant's usage in the current windows: settled amounts plus what in-flight requests have reserved.
struct UsageWindow: Sendable {
    var day: String
    var month: String
    var tokensToday = 0
    var tokensThisMonth = 0
    var picoUSDThisMonth: Int64 = 0
    var reservedTokens = 0
    var reservedPicoUSD: Int64 = 0
    /// Which load of the tenant's usage this is: a reservation settles only into the window it was made in.
    var generation = 0
    /// Requests started in each of the last 60 seconds (a ring indexed by the Unix second mod 60): the minute's
    /// window in constant memory, whatever the request rate.
    var requestsPerSecond = [Int](repeating: 0, count: 60)
    /// The Unix second of the newest slot.
    var newestSecond: Int64 = 0
    /// How many requests started in the last minute (this second and the 59 before it).
    private(set) var requestsInLastMinute = 0

    /// Moves the window to `now`, emptying the slots of the seconds that left it.
    mutating func advance(to now: Date) {
        let second = Int64(now.timeIntervalSince1970.rounded(.down))
        guard second > newestSecond else { return }
        if second - newestSecond >= 60 {
            requestsPerSecond = [Int](repeating: 0, count: 60)
            requestsInLastMinute = 0
        } else {
            for gone in (newestSecond + 1)...second {
                let slot = Int(gone % 60)
                requestsInLastMinute -= requestsPerSecond[slot]
                requestsPerSecond[slot] = 0
            }
        }
        newestSecond = second
    }

    /// Counts requests made at `times` (the last minute's, read from the database) into a window at `now`.
    mutating func seed(requestTimes times: [Date], now: Date) {
        advance(to: now)
        for time in times {
            let second = Int64(time.timeIntervalSince1970.rounded(.down))
            guard second > newestSecond - 60 && second <= newestSecond else { continue }
            requestsPerSecond[Int(second % 60)] += 1
            requestsInLastMinute += 1
        }
    }

    /// Counts a request started now (after `advance(to:)`).
    mutating func countRequest() {
        requestsPerSecond[Int(newestSecond % 60)] += 1
        requestsInLastMinute += 1
    }

    /// Seconds until the oldest request of the window leaves it (at least 1).
    var secondsUntilASlotFrees: Int {
        for age in stride(from: 59, through: 0, by: -1) where requestsPerSecond[Int((newestSecond - Int64(age) + 60) % 60)] > 0 {
            return 60 - age
        }
        return 1
    }
}

/// What one request holds against its tenant's caps until it settles.
struct Reservation: Sendable {
    var tenantID: Int64
    var tokens: Int
    var picoUSD: Int64
    /// The output tokens held (of `tokens`): the request's maximum, or what the caps had left when it was clamped.
    var outputTokens = 0
    /// The output maximum the request asked for, when the caps' remainder lowered it to `outputTokens`.
    var clampedFrom: Int?
    var day: String
    var month: String
    var generation: Int
}

/// What a request asks of its tenant's caps: its input (an upper bound), its output maximum, and their prices.
struct CapAsk: Sendable {
    var inputTokens: Int
    var outputTokens: Int
    var inputPicoUSD: Int64
    /// The model's output price, in pico-USD per token.
    var picoUSDPerOutputToken: Double
}

/// A request that would pass a cap: refused before it reaches the provider.
struct CapRefusal: Error, Sendable {
    /// The cap that refused.
    var cap: CapName
    var message: String
    var retryAfterSeconds: Int
}

/// Enforces caps in memory, atomically: a request reserves before it is forwarded and settles after, so N
/// concurrent requests together pass a cap by at most what they reserved.
final class CapLedger: Sendable {
    private let windows = Mutex<[Int64: UsageWindow]>([:])
    private let loads = Atomic<Int>(0)

    static func day(_ date: Date) -> String { String(Timestamp.format(date).prefix(10)) }
    static func month(_ date: Date) -> String { String(Timestamp.format(date).prefix(7)) }

    /// Whether the tenant's windows are loaded.
    func isLoaded(_ tenantID: Int64) -> Bool { windows.withLock { $0[tenantID] != nil } }

    /// Installs a tenant's settled usage, read from the database.
    func load(_ tenantID: Int64, window: UsageWindow) {
        var window = window
        window.generation = loads.add(1, ordering: .relaxed).newValue
        windows.withLock { all in
            if all[tenantID] == nil { all[tenantID] = window }
        }
    }

    /// Forgets a tenant's windows: it no longer runs on this host, and the next request after it comes back loads
    /// its usage from the database again (with whatever it used on other hosts meanwhile). Requests still in flight
    /// settle into the database only.
    func forget(_ tenantID: Int64) { _ = windows.withLock { $0.removeValue(forKey: tenantID) } }

    /// Forgets every tenant (the host lost its leases).
    func forgetAll() { windows.withLock { $0.removeAll() } }

    /// Reserves `tokens` and `picoUSD` if every cap allows it (nothing to clamp: all of it is input).
    func reserve(tenantID: Int64, caps: Caps, tokens: Int, picoUSD: Int64, now: Date = Date()) -> Result<Reservation, CapRefusal> {
        reserve(
            tenantID: tenantID, caps: caps, ask: CapAsk(inputTokens: tokens, outputTokens: 0, inputPicoUSD: picoUSD, picoUSDPerOutputToken: 0),
            now: now)
    }

    /// Reserves a request's input and output if every cap allows it. When the caps' remainder (after what requests in
    /// flight hold) cannot cover the whole output, and the caps clamp, the output is lowered to what remains, in
    /// tokens and in dollars at the model's output price; it is refused when that is below `caps.minOutputTokens`.
    func reserve(tenantID: Int64, caps: Caps, ask: CapAsk, now: Date = Date()) -> Result<Reservation, CapRefusal> {
        let day = Self.day(now)
        let month = Self.month(now)
        return windows.withLock { all in
            // Moved out of the dictionary so that appending to its arrays does not copy them.
            var window = all.removeValue(forKey: tenantID) ?? UsageWindow(day: day, month: month)
            defer { all[tenantID] = window }
            Self.roll(&window, day: day, month: month)
            window.advance(to: now)
            if window.requestsInLastMinute >= caps.requestsPerMinute {
                let retry = window.secondsUntilASlotFrees
                return .failure(
                    CapRefusal(
                        cap: .requestsPerMinute,
                        message:
                            "requests_per_minute cap reached: \(window.requestsInLastMinute) of \(caps.requestsPerMinute) requests in the last minute; retry in \(retry) s",
                        retryAfterSeconds: retry
                    )
                )
            }
            let capUSD = Int64(caps.usdPerMonth * 1e12)
            var output = ask.outputTokens
            var clampedFrom: Int?
            if caps.onCap == .clamp, output > 0 {
                let fits = Self.outputThatFits(ask, caps: caps, capUSD: capUSD, window: window)
                if fits < output && fits >= min(caps.minOutputTokens, output) {
                    clampedFrom = output
                    output = fits
                }
            }
            let tokens = ask.inputTokens + output
            let picoUSD = ask.inputPicoUSD + Int64((Double(output) * ask.picoUSDPerOutputToken).rounded(.up))
            let checks: [(CapName, Int64, Int64, Int64)] = [
                (.tokensPerDay, Int64(window.tokensToday), Int64(caps.tokensPerDay), Int64(tokens)),
                (.tokensPerMonth, Int64(window.tokensThisMonth), Int64(caps.tokensPerMonth), Int64(tokens)),
                (.usdPerMonth, window.picoUSDThisMonth, capUSD, picoUSD),
            ]
            let reservedTokens = Int64(window.reservedTokens)
            for (name, used, cap, asked) in checks {
                let inFlight = name == .usdPerMonth ? window.reservedPicoUSD : reservedTokens
                if used + inFlight + asked > cap {
                    // When the window resets: worked out only for a refusal (calendar arithmetic and formatting are not free).
                    let reset = name == .tokensPerDay ? Self.nextDay(now) : Self.nextMonth(now)
                    let retry = max(1, Int((Timestamp.parse(reset)?.timeIntervalSince(now) ?? 60).rounded(.up)))
                    let amounts =
                        name == .usdPerMonth
                        ? String(format: "USD %.4f used of USD %.2f", Double(used) / 1e12, caps.usdPerMonth)
                            + (inFlight > 0 ? String(format: " (USD %.4f in flight)", Double(inFlight) / 1e12) : "")
                        : "\(used) tokens used of \(cap)" + (inFlight > 0 ? " (\(inFlight) in flight)" : "")
                    return .failure(
                        CapRefusal(
                            cap: name,
                            message:
                                "\(name.rawValue) cap reached: \(amounts); this request reserves \(name == .usdPerMonth ? String(format: "USD %.4f", Double(asked) / 1e12) : "\(asked) tokens"); resets at \(reset)",
                            retryAfterSeconds: retry
                        )
                    )
                }
            }
            window.countRequest()
            window.reservedTokens += tokens
            window.reservedPicoUSD += picoUSD
            return .success(
                Reservation(
                    tenantID: tenantID, tokens: tokens, picoUSD: picoUSD, outputTokens: output, clampedFrom: clampedFrom, day: day, month: month,
                    generation: window.generation))
        }
    }

    /// The most output tokens the caps' remainder covers after the request's input, in tokens and in dollars.
    private static func outputThatFits(_ ask: CapAsk, caps: Caps, capUSD: Int64, window: UsageWindow) -> Int {
        let tokensLeft = min(caps.tokensPerDay - window.tokensToday, caps.tokensPerMonth - window.tokensThisMonth) - window.reservedTokens
        var fits = tokensLeft - ask.inputTokens
        if ask.picoUSDPerOutputToken > 0 {
            let picoLeft = capUSD - window.picoUSDThisMonth - window.reservedPicoUSD - ask.inputPicoUSD
            let byDollars = (Double(picoLeft) / ask.picoUSDPerOutputToken).rounded(.down)
            if byDollars < Double(fits) { fits = Int(max(0, byDollars)) }
        }
        return max(0, fits)
    }

    /// Replaces a reservation by what the request actually used (or keeps the reservation's amounts when unknown).
    func settle(_ reservation: Reservation, tokens: Int, picoUSD: Int64) {
        windows.withLock { all in
            guard var window = all[reservation.tenantID], window.generation == reservation.generation else { return }
            window.reservedTokens -= reservation.tokens
            window.reservedPicoUSD -= reservation.picoUSD
            if window.day == reservation.day { window.tokensToday += tokens }
            if window.month == reservation.month {
                window.tokensThisMonth += tokens
                window.picoUSDThisMonth += picoUSD
            }
            all[reservation.tenantID] = window
        }
    }

    /// The tenant's settled usage now (for alerts).
    func snapshot(_ tenantID: Int64) -> UsageWindow? { windows.withLock { $0[tenantID] } }

    private static func roll(_ window: inout UsageWindow, day: String, month: String) {
        if window.day != day {
            window.day = day
            window.tokensToday = 0
        }
        if window.month != month {
            window.month = month
            window.tokensThisMonth = 0
            window.picoUSDThisMonth = 0
        }
    }

    static func nextDay(_ now: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return Timestamp.format(calendar.startOfDay(for: now).addingTimeInterval(86_400))
    }

    static func nextMonth(_ now: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: calendar.dateComponents([.year, .month], from: now))!
        return Timestamp.format(calendar.date(byAdding: .month, value: 1, to: start)!)
    }
}
