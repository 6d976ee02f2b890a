import Foundation
import Yams

/// Loads and validates plan definitions from YAML files.
public enum PlanLoader {
    /// Loads every `*.yaml` file of a directory.
    /// - Throws: `PlanError` for the first invalid file, or when two files define the same plan id.
    public static func loadDirectory(_ directory: String) throws(PlanError) -> [Plan] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw PlanError(file: directory, line: nil, field: "(directory)", problem: "cannot list plans: \(error.localizedDescription)")
        }
        var plans: [Plan] = []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let plan = try load(path: (directory as NSString).appendingPathComponent(name))
            if plans.contains(where: { $0.id == plan.id }) {
                throw PlanError(file: name, line: nil, field: "id", problem: "plan id '\(plan.id)' is defined twice")
            }
            plans.append(plan)
        }
        if plans.isEmpty {
            throw PlanError(file: directory, line: nil, field: "(directory)", problem: "no plan files (*.yaml) found")
        }
        return plans
    }

    /// Loads one plan file.
    public static func load(path: String) throws(PlanError) -> Plan {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PlanError(file: path, line: nil, field: "(file)", problem: "cannot read: \(error.localizedDescription)")
        }
        return try parse(text, file: path)
    }

    /// Parses a plan from YAML text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(PlanError) -> Plan {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else {
                throw PlanError(file: file, line: nil, field: "(file)", problem: "the file is empty")
            }
            root = node
        } catch let error as PlanError {
            throw error
        } catch let error as YamlError {
            throw PlanError(file: file, line: Self.line(of: error), field: "(syntax)", problem: "not valid YAML: \(error)")
        } catch {
            throw PlanError(file: file, line: nil, field: "(syntax)", problem: "not valid YAML: \(error)")
        }
        var fields = try YAMLFields(root, file: file, path: "")
        let id = try fields.string("id")
        guard id.range(of: "^[a-z][a-z0-9-]{0,31}$", options: .regularExpression) != nil else {
            throw fields.error("id", fields.node("id"), "'\(id)' must be lowercase letters, digits and hyphens")
        }
        let displayName = try fields.string("name")
        let price = try fields.number("price_usd_per_month")
        let kindNode = try fields.required("kind")
        guard let kindText = YAMLFields.string(kindNode), let kind = PlanKind(rawValue: kindText) else {
            throw fields.error("kind", kindNode, "expected 'byok' or 'managed', found '\(YAMLFields.text(kindNode))'")
        }
        var providers: [Provider] = []
        var models: [ModelPrice] = []
        var caps: Caps?
        switch kind {
        case .byok:
            for node in try fields.sequence("providers") {
                guard let name = YAMLFields.string(node), let provider = Provider(rawValue: name) else {
                    let known = Provider.allCases.map(\.rawValue).joined(separator: ", ")
                    throw fields.error("providers", node, "unknown provider '\(YAMLFields.text(node))' (known: \(known))")
                }
                providers.append(provider)
            }
            if providers.isEmpty { throw fields.error("providers", fields.node("providers"), "a BYOK plan needs at least one provider") }
        case .managed:
            for (index, node) in try fields.sequence("models").enumerated() {
                models.append(try model(node, file: file, path: "models[\(index)]"))
            }
            if models.isEmpty { throw fields.error("models", fields.node("models"), "a managed plan needs at least one model") }
            caps = try self.caps(try fields.required("caps"), file: file)
        }
        var thresholds = [50, 80, 100]
        var webhook: String?
        if let alertsNode = fields.node("alerts") {
            var alerts = try YAMLFields(alertsNode, file: file, path: "alerts")
            if let list = try alerts.optionalSequence("thresholds_percent") {
                thresholds = []
                for node in list {
                    guard let value = YAMLFields.int(node, minimum: 1), value <= 1000 else {
                        throw alerts.error("thresholds_percent", node, "expected a percentage between 1 and 1000")
                    }
                    thresholds.append(value)
                }
            }
            webhook = try alerts.optionalString("webhook")
            if let url = webhook, !(url.hasPrefix("http://") || url.hasPrefix("https://")) {
                throw alerts.error("webhook", alerts.node("webhook"), "expected an http(s) URL")
            }
            try alerts.finish()
        }
        let sandboxNode = try fields.required("sandbox")
        let sandbox = try sandboxLimits(sandboxNode, file: file)
        if kind == .managed && !sandbox.egressAllow.isEmpty {
            throw PlanError(
                file: file, line: sandboxNode.mark?.line, field: "sandbox.egress_allow",
                problem: "applies to BYOK plans only: a managed agent's one way out is the metering proxy")
        }
        let keyHealth = try self.keyHealth(&fields, kind: kind)
        let keyDelivery = try self.keyDelivery(&fields, kind: kind, providers: providers)
        try fields.finish()
        return Plan(
            id: id, displayName: displayName, monthlyPriceUSD: price, kind: kind, providers: providers, models: models, caps: caps,
            alertThresholds: thresholds.sorted(), alertWebhook: webhook, sandbox: sandbox, keyHealth: keyHealth, keyDelivery: keyDelivery
        )
    }

    /// `key_delivery:` (`environment`, the default, or `brokered`): BYOK plans only, and brokered only with providers
    /// whose clients take a base URL and send the key in a header.
    private static func keyDelivery(_ fields: inout YAMLFields, kind: PlanKind, providers: [Provider]) throws(PlanError) -> KeyDelivery {
        guard let text = try fields.optionalString("key_delivery") else { return .environment }
        guard let delivery = KeyDelivery(rawValue: text) else {
            let known = KeyDelivery.allCases.map(\.rawValue).joined(separator: ", ")
            throw fields.error("key_delivery", fields.node("key_delivery"), "expected one of \(known), found '\(text.prefix(40))'")
        }
        if kind == .managed {
            throw fields.error("key_delivery", fields.node("key_delivery"), "applies to BYOK plans only: a managed agent has no key of its own")
        }
        for unsupported in providers where delivery == .brokered && unsupported.brokering == nil {
            throw fields.error(
                "key_delivery", fields.node("key_delivery"),
                "brokered delivery cannot serve provider '\(unsupported)': \(unsupported.whyNotBrokered); remove it from providers or deliver keys in the environment"
            )
        }
        return delivery
    }

    /// `revalidate_every:` (a duration: 90s, 30m, 6h, 1d; 0 for never), `on_invalid_key:` and `fallback_plan:`.
    private static func keyHealth(_ fields: inout YAMLFields, kind: PlanKind) throws(PlanError) -> KeyHealthPolicy {
        var policy = KeyHealthPolicy()
        if let text = try fields.optionalString("revalidate_every") {
            guard let seconds = DurationText.seconds(text) else {
                throw fields.error(
                    "revalidate_every", fields.node("revalidate_every"), "expected a duration such as 90s, 30m, 6h or 1d (0 for never)")
            }
            policy.revalidateEverySeconds = seconds
        }
        if let text = try fields.optionalString("on_invalid_key") {
            guard let action = InvalidKeyAction(rawValue: text) else {
                let known = InvalidKeyAction.allCases.map(\.rawValue).joined(separator: ", ")
                throw fields.error("on_invalid_key", fields.node("on_invalid_key"), "expected one of \(known), found '\(text.prefix(40))'")
            }
            policy.onInvalidKey = action
        }
        policy.fallbackPlan = try fields.optionalString("fallback_plan")
        if let bound = try fields.optionalInt("fallback_max_per_month", minimum: 0) {
            guard policy.onInvalidKey == .fallbackManaged else {
                throw fields.error(
                    "fallback_max_per_month", fields.node("fallback_max_per_month"), "applies with on_invalid_key: fallback-managed only")
            }
            policy.fallbackMaxPerMonth = bound
        }
        if kind == .managed && (policy.onInvalidKey != .keep || policy.fallbackPlan != nil) {
            throw fields.error("on_invalid_key", fields.node("on_invalid_key") ?? fields.node("fallback_plan"), "applies to BYOK plans only")
        }
        if (policy.onInvalidKey == .fallbackManaged) != (policy.fallbackPlan != nil) {
            throw fields.error(
                "fallback_plan", fields.node("fallback_plan") ?? fields.node("on_invalid_key"),
                "on_invalid_key: fallback-managed needs fallback_plan: (a managed plan's id), and fallback_plan needs it")
        }
        return policy
    }

    private static func model(_ node: Node, file: String, path: String) throws(PlanError) -> ModelPrice {
        var fields = try YAMLFields(node, file: file, path: path)
        let id = try fields.string("id")
        let providerNode = try fields.required("provider")
        guard let name = YAMLFields.string(providerNode), let provider = Provider(rawValue: name) else {
            throw fields.error("provider", providerNode, "unknown provider '\(YAMLFields.text(providerNode))'")
        }
        let pattern = try fields.optionalString("pattern")
        if let pattern, let problem = ModelMatch.problem(pattern: pattern, id: id) {
            throw fields.error("pattern", fields.node("pattern"), problem)
        }
        let priceDate = try fields.optionalString("price_date")
        if let priceDate, priceDate.range(of: "^[0-9]{4}-[0-9]{2}-[0-9]{2}$", options: .regularExpression) == nil {
            throw fields.error(
                "price_date", fields.node("price_date"), "expected the date the prices were taken, as yyyy-mm-dd, found '\(priceDate.prefix(40))'")
        }
        let model = ModelPrice(
            id: id, provider: provider,
            inputUSDPerMillion: try fields.number("input_usd_per_mtok"),
            outputUSDPerMillion: try fields.number("output_usd_per_mtok"),
            cachedInputUSDPerMillion: try fields.optionalNumber("cached_input_usd_per_mtok"),
            cacheWriteUSDPerMillion: try fields.optionalNumber("cache_write_usd_per_mtok"),
            pattern: pattern, priceDate: priceDate
        )
        try fields.finish()
        return model
    }

    private static func caps(_ node: Node, file: String) throws(PlanError) -> Caps {
        var fields = try YAMLFields(node, file: file, path: "caps")
        var caps = Caps(
            tokensPerDay: try fields.int("tokens_per_day", minimum: 1),
            tokensPerMonth: try fields.int("tokens_per_month", minimum: 1),
            requestsPerMinute: try fields.int("requests_per_minute", minimum: 1),
            usdPerMonth: try fields.number("usd_per_month"),
            defaultMaxTokens: try fields.int("default_max_tokens", minimum: 1)
        )
        if let text = try fields.optionalString("on_cap") {
            guard let action = CapAction(rawValue: text) else {
                let known = CapAction.allCases.map(\.rawValue).joined(separator: " or ")
                throw fields.error("on_cap", fields.node("on_cap"), "expected \(known), found '\(text.prefix(40))'")
            }
            caps.onCap = action
        }
        if let minimum = try fields.optionalInt("min_output_tokens") {
            guard minimum >= 1 else {
                throw fields.error("min_output_tokens", fields.node("min_output_tokens"), "expected a whole number ≥ 1, found \(minimum)")
            }
            caps.minOutputTokens = minimum
        }
        try fields.finish()
        return caps
    }

    private static func sandboxLimits(_ node: Node, file: String) throws(PlanError) -> SandboxLimits {
        var fields = try YAMLFields(node, file: file, path: "sandbox")
        let profile = try fields.string("profile")
        let memoryNode = try fields.required("memory_max")
        guard let memoryText = YAMLFields.string(memoryNode), let memory = ByteSize.parse(memoryText), memory >= 16 << 20 else {
            throw fields.error("memory_max", memoryNode, "expected a size of at least 16M such as 512M or 2G, found '\(YAMLFields.text(memoryNode))'")
        }
        let cpu = try fields.int("cpu_quota_percent", minimum: 1)
        let tasks = try fields.int("tasks_max", minimum: 1)
        var stateMax = SandboxLimits.defaultStateMaxBytes
        if let stateNode = fields.node("state_max") {
            guard let text = YAMLFields.string(stateNode), let size = ByteSize.parse(text), size >= 1 << 20 else {
                throw fields.error("state_max", stateNode, "expected a size of at least 1M such as 256M or 1G, found '\(YAMLFields.text(stateNode))'")
            }
            stateMax = size
        }
        var tmpMax: UInt64?
        if let tmpNode = fields.node("tmp_max") {
            guard let text = YAMLFields.string(tmpNode), let size = ByteSize.parse(text), size >= 1 << 20, size <= memory else {
                throw fields.error(
                    "tmp_max", tmpNode,
                    "expected a size from 1M up to memory_max (\(memoryText)), such as 64M: /tmp is memory; found '\(YAMLFields.text(tmpNode))'")
            }
            tmpMax = size
        }
        var egress: [EgressRule] = []
        for (index, node) in (try fields.optionalSequence("egress_allow") ?? []).enumerated() {
            egress.append(try egressRule(node, index: index, fields: fields))
        }
        let warmPool = try warmPool(&fields)
        try fields.finish()
        return SandboxLimits(
            profile: profile, memoryMaxBytes: memory, cpuQuotaPercent: cpu, tasksMax: tasks, egressAllow: egress, stateMaxBytes: stateMax,
            warmPool: warmPool, tmpMaxBytes: tmpMax)
    }

    /// `warm_pool:` (how many units to keep waiting, 0 for none) and `warm_pool_max_wait:` (a duration, default 10m).
    private static func warmPool(_ fields: inout YAMLFields) throws(PlanError) -> WarmPoolPolicy? {
        let size = try fields.optionalInt("warm_pool") ?? 0
        guard size <= WarmPoolPolicy.maximumSize else {
            throw fields.error("warm_pool", fields.node("warm_pool"), "expected at most \(WarmPoolPolicy.maximumSize) units, found \(size)")
        }
        var wait = WarmPoolPolicy.defaultMaxWaitSeconds
        if let text = try fields.optionalString("warm_pool_max_wait") {
            guard let seconds = DurationText.seconds(text), seconds > 0 else {
                throw fields.error("warm_pool_max_wait", fields.node("warm_pool_max_wait"), "expected a duration such as 90s, 10m or 1h")
            }
            guard size > 0 else {
                throw fields.error("warm_pool_max_wait", fields.node("warm_pool_max_wait"), "set only with warm_pool: 1 or more")
            }
            wait = seconds
        }
        return size == 0 ? nil : WarmPoolPolicy(size: size, maxWaitSeconds: wait)
    }

    /// An `egress_allow:` entry: `HOST[:PORT]`, `http://HOST[:PORT]`, or `{destination: ..., allow_private: true}`.
    private static func egressRule(_ node: Node, index: Int, fields: YAMLFields) throws(PlanError) -> EgressRule {
        let field = "egress_allow[\(index)]"
        var text = YAMLFields.string(node)
        var allowPrivate = false
        if text == nil, case .mapping = node {
            var entry = try YAMLFields(node, file: fields.file, path: fields.fieldPath(field))
            text = try entry.string("destination")
            if let flag = entry.node("allow_private") {
                guard case .scalar(let scalar) = flag, ["true", "false"].contains(scalar.string) else {
                    throw entry.error("allow_private", flag, "expected true or false")
                }
                allowPrivate = scalar.string == "true"
            }
            try entry.finish()
        }
        guard let text else { throw fields.error(field, node, "expected HOST[:PORT], http://HOST[:PORT] or {destination: ..., allow_private: true}") }
        do {
            return try EgressRule.parse(text, allowPrivate: allowPrivate, field: "destination")
        } catch let error as KeyholdError {
            throw fields.error(field, node, error.message)
        } catch {
            throw fields.error(field, node, "\(error)")
        }
    }

    private static func line(of error: YamlError) -> Int? {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark.line
        default: nil
        }
    }
}

/// Durations as people write them in plan files: `90s`, `30m`, `6h`, `1d`, or `0`.
public enum DurationText {
    /// The duration in whole seconds, or nil when the text is not one.
    public static func seconds(_ text: String) -> Int? {
        if text == "0" { return 0 }
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        guard let unit = text.last.flatMap({ units[$0] }), let amount = Int(text.dropLast()), amount > 0, amount <= 366 * 86_400 else {
            return nil
        }
        return amount * unit
    }
}

/// Sizes written as systemd and people write them: `512M`, `2G`, `65536`.
public enum ByteSize {
    /// Parses a size with an optional K, M, G or T suffix (powers of 1024).
    public static func parse(_ text: String) -> UInt64? {
        guard let last = text.last else { return nil }
        let multipliers: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        if let multiplier = multipliers[Character(last.uppercased())] {
            guard let value = UInt64(text.dropLast()) else { return nil }
            return value.multipliedReportingOverflow(by: multiplier).overflow ? nil : value * multiplier
        }
        return UInt64(text)
    }
}
