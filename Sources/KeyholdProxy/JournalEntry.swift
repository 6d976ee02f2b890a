import Foundation

/// One line of the usage journal: a reservation made, or a request settled.
struct JournalEntry: Codable, Sendable, Equatable {
    /// `r` (reserved) or `s` (settled).
    var kind: String
    var id: String
    var tenantID: Int64
    var sandboxID: Int64?
    var model: String
    var reservedTokens: Int
    var reservedPicoUSD: Int64
    var input = 0
    var cachedInput = 0
    var cacheWrite = 0
    var output = 0
    var reasoning = 0
    var picoUSD: Int64 = 0
    var status = 0
    /// `usage` (the provider's accounting) or `reservation` (usage never arrived).
    var charged = "usage"
    var latencyMs = 0.0
    var time: String
    /// The tenant's key a brokered request was sent with (nil: the platform's).
    var keyProvider: String? = nil
    var keyVersion: Int? = nil
    /// The output maximum the request asked for, when the caps' remainder lowered it.
    var clampedFrom: Int? = nil
    /// The Responses API response the request made (its owner, for reads and cancels later).
    var responseID: String? = nil
}
