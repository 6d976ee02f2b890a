import Foundation
public import KeyholdCore
import KeyholdStore

extension ControlPlane {
    /// Audit records, filtered. `since` is a duration such as `24h`, `30m`, `7d`, or an RFC 3339 time.
    /// - Parameters:
    ///   - tenant: the records of the live tenant of that name (not of a deleted tenant that had the name before).
    ///   - tenantID: the records of a tenant by its id, deleted or not.
    public func auditRecords(tenant: String?, tenantID: Int64? = nil, action: String?, since: String?, limit: Int?) async throws -> [AuditRecord] {
        let sinceTime = try since.map { try Self.parseSince($0) }
        return try await store.read { tx in
            let id = try tenantID ?? tenant.map { name in try tx.liveTenantID(named: name) }
            return try tx.auditRecords(tenantID: id, action: action, since: sinceTime, limit: limit, newest: true)
        }
    }

    /// Turns `24h`, `30m`, `7d`, `90s` or an RFC 3339 time into the timestamp to list from.
    public static func parseSince(_ text: String, now: Date = Date()) throws -> String {
        if Timestamp.parse(text) != nil { return text }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = text.last.flatMap({ units[$0] }), let amount = Double(text.dropLast()), amount >= 0 else {
            throw KeyholdError.invalidInput("--since '\(text.prefix(40))' is not a duration like 24h, 30m, 7d or an RFC 3339 time")
        }
        // Beyond a century the time would leave the calendar Keyhold formats (and no record is that old).
        guard amount * unit <= 100 * 366 * 86_400 else {
            throw KeyholdError.invalidInput("--since '\(text.prefix(40))' reaches back more than a century: use a shorter duration")
        }
        return Timestamp.format(now.addingTimeInterval(-amount * unit))
    }
}
