public import ArgumentParser

extension ParsableArguments {
    /// Refuses `value` below `minimum`, naming the option as it is typed.
    public func require(_ value: Int, atLeast minimum: Int, for option: String) throws(ValidationError) {
        guard value >= minimum else { throw ValidationError("\(option) needs a whole number of at least \(minimum) (got \(value))") }
    }
}
