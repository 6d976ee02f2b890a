import Yams

/// Reads the fields of one YAML mapping strictly: each field is read once with its expected type,
/// and `finish()` refuses any field nobody read. Errors name the file, the line and the field's path.
struct YAMLFields {
    let file: String
    let path: String
    private let mapping: Node.Mapping
    private let mark: Mark?
    private var read: Set<String> = []

    init(_ node: Node, file: String, path: String) throws(PlanError) {
        guard case .mapping(let mapping) = node else {
            throw PlanError(file: file, line: node.mark?.line, field: path.isEmpty ? "(top level)" : path, problem: "expected a mapping of fields")
        }
        self.file = file
        self.path = path
        self.mapping = mapping
        self.mark = mapping.mark
    }

    func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ node: Node?, _ problem: String) -> PlanError {
        PlanError(file: file, line: node?.mark?.line ?? mark?.line, field: fieldPath(key), problem: problem)
    }

    mutating func node(_ key: String) -> Node? {
        read.insert(key)
        return mapping[Node(key)]
    }

    mutating func required(_ key: String) throws(PlanError) -> Node {
        guard let node = node(key) else { throw error(key, nil, "missing required field") }
        return node
    }

    mutating func string(_ key: String) throws(PlanError) -> String {
        let node = try required(key)
        guard let value = Self.string(node) else { throw error(key, node, "expected a string") }
        return value
    }

    mutating func optionalString(_ key: String) throws(PlanError) -> String? {
        guard let node = node(key) else { return nil }
        guard let value = Self.string(node) else { throw error(key, node, "expected a string") }
        return value
    }

    mutating func int(_ key: String, minimum: Int = 0) throws(PlanError) -> Int {
        let node = try required(key)
        guard let value = Self.int(node, minimum: minimum) else {
            throw error(key, node, "expected a whole number ≥ \(minimum), found '\(Self.text(node))'")
        }
        return value
    }

    mutating func optionalInt(_ key: String, minimum: Int = 0) throws(PlanError) -> Int? {
        guard let node = node(key) else { return nil }
        guard let value = Self.int(node, minimum: minimum) else {
            throw error(key, node, "expected a whole number ≥ \(minimum), found '\(Self.text(node))'")
        }
        return value
    }

    mutating func number(_ key: String) throws(PlanError) -> Double {
        let node = try required(key)
        guard let value = Self.number(node) else { throw error(key, node, "expected a number ≥ 0, found '\(Self.text(node))'") }
        return value
    }

    mutating func optionalNumber(_ key: String) throws(PlanError) -> Double? {
        guard let node = node(key) else { return nil }
        guard let value = Self.number(node) else { throw error(key, node, "expected a number ≥ 0, found '\(Self.text(node))'") }
        return value
    }

    mutating func sequence(_ key: String) throws(PlanError) -> [Node] {
        let node = try required(key)
        guard case .sequence(let items) = node else { throw error(key, node, "expected a list") }
        return Array(items)
    }

    mutating func optionalSequence(_ key: String) throws(PlanError) -> [Node]? {
        guard let node = node(key) else { return nil }
        guard case .sequence(let items) = node else { throw error(key, node, "expected a list") }
        return Array(items)
    }

    /// Refuses the fields that were never read: a typo must not be silently ignored.
    func finish() throws(PlanError) {
        for (key, value) in mapping where !read.contains(key.string ?? "") {
            throw error(key.string ?? "?", value, "unknown field (check its spelling)")
        }
    }

    static func string(_ node: Node) -> String? {
        guard case .scalar(let scalar) = node else { return nil }
        return scalar.string
    }

    static func int(_ node: Node, minimum: Int) -> Int? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Int(scalar.string), value >= minimum else { return nil }
        return value
    }

    static func number(_ node: Node) -> Double? {
        guard case .scalar(let scalar) = node, scalar.style == .plain, let value = Double(scalar.string), value >= 0, value.isFinite else {
            return nil
        }
        return value
    }

    static func text(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): String(scalar.string.prefix(40))
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }
}
