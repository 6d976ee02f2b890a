/// The plans this host sells, by id.
public struct PlanCatalog: Sendable {
    public let plans: [Plan]

    public init(plans: [Plan]) { self.plans = plans }

    /// Loads and validates every plan file of a directory.
    public static func load(directory: String) throws(PlanError) -> PlanCatalog {
        PlanCatalog(plans: try PlanLoader.loadDirectory(directory))
    }

    /// The plan with this id.
    /// - Throws: `KeyholdError.notFound` listing the known plans.
    public func plan(_ id: String) throws -> Plan {
        guard let plan = plans.first(where: { $0.id == id }) else {
            throw KeyholdError.notFound("unknown plan '\(id.prefix(40))': known plans are \(plans.map(\.id).joined(separator: ", "))")
        }
        return plan
    }
}
