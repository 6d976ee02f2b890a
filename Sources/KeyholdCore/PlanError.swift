/// A plan file that cannot be used, with the file, the line and the field at fault.
public struct PlanError: UserFacingError, Sendable, Equatable {
    public let file: String
    public let line: Int?
    public let field: String
    public let problem: String

    public init(file: String, line: Int?, field: String, problem: String) {
        self.file = file
        self.line = line
        self.field = field
        self.problem = problem
    }

    public var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return "\(location): \(field): \(problem)"
    }
}
