/// The plans this host sells, by id.
public struct PlanCatalog: Sendable {
    public let plans: [Plan]

    public init(plans: [Plan]) { self.plans = plans }

    /// Loads and validates every plan file of a directory, and the plans' references to each other.
    public static func load(directory: String) throws(PlanError) -> PlanCatalog {
        let catalog = PlanCatalog(plans: try PlanLoader.loadDirectory(directory))
        for plan in catalog.plans {
            guard let fallback = plan.keyHealth.fallbackPlan else { continue }
            guard catalog.plans.contains(where: { $0.id == fallback && $0.kind == .managed }) else {
                throw PlanError(
                    file: "\(directory)/\(plan.id).yaml", line: nil, field: "fallback_plan",
                    problem:
                        "'\(fallback.prefix(40))' is not a managed plan of this directory (managed plans: \(catalog.plans.filter { $0.kind == .managed }.map(\.id).joined(separator: ", ")))"
                )
            }
        }
        return catalog
    }

    /// The plan a tenant's agent runs on: its own, or its plan's fallback plan while its key is invalid
    /// (`on_invalid_key: fallback-managed`).
    public func effectivePlan(id: String, fallbackProvider: String?) throws -> Plan {
        let own = try plan(id)
        guard fallbackProvider != nil, own.keyHealth.onInvalidKey == .fallbackManaged, let fallback = own.keyHealth.fallbackPlan else { return own }
        return try plan(fallback)
    }

    /// What any plan of this host lists as the price of a model, for metering a tenant's own key (brokered): the
    /// tenant pays its provider, so the figure is the host's estimate of that bill.
    public func listedPrice(model: String, provider: Provider) -> ModelPrice? {
        for plan in plans {
            if let price = plan.model(matching: model, provider: provider) { return price }
        }
        return nil
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
