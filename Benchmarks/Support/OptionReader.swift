/// Reads the values of command-line flags, failing with the flag's name and the program's usage.
public struct OptionReader {
    /// The program's usage text, appended to every error.
    public let usage: String

    public init(usage: String) { self.usage = usage }

    /// The whole number after `flag`, at least `minimum`.
    public func number(after flag: String, in rest: inout ArraySlice<String>, minimum: Int) throws(BenchError) -> Int {
        guard let text = rest.popFirst(), let value = Int(text), value >= minimum else {
            throw BenchError("\(flag) needs a whole number of at least \(minimum)\n\(usage)")
        }
        return value
    }

    /// The non-empty text after `flag`.
    public func text(after flag: String, in rest: inout ArraySlice<String>) throws(BenchError) -> String {
        guard let text = rest.popFirst(), !text.isEmpty else { throw BenchError("\(flag) needs a value\n\(usage)") }
        return text
    }
}
