/// A tenant's name: also a fragment of systemd unit names (`keyhold-NAME-N.service`) and of the
/// tenant's dynamic user name, so it is restricted to what both accept.
public struct TenantName: Hashable, Sendable, CustomStringConvertible, Codable {
    public let value: String

    /// The longest accepted name; the unit name and the dynamic user (`kh-NAME`, at most 31 chars) must fit.
    public static let maximumLength = 28

    /// Validates a name: lowercase ASCII letters, digits and single hyphens, starting with a letter.
    /// - Throws: `KeyholdError.invalidInput` naming the rule the name breaks.
    public init(_ value: String) throws {
        let rule = "use 1 to \(Self.maximumLength) lowercase letters, digits and hyphens, starting with a letter (e.g. acme-corp)"
        guard !value.isEmpty else { throw KeyholdError.invalidInput("tenant name is empty: \(rule)") }
        guard value.utf8.count <= Self.maximumLength else {
            throw KeyholdError.invalidInput("tenant name '\(value.prefix(40))' is too long: \(rule)")
        }
        let bytes = Array(value.utf8)
        let isLower = { (b: UInt8) in b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z") }
        let isDigit = { (b: UInt8) in b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        let hyphen = UInt8(ascii: "-")
        guard isLower(bytes[0]) else {
            throw KeyholdError.invalidInput("tenant name '\(Self.printable(value))' must start with a lowercase letter: \(rule)")
        }
        for (index, byte) in bytes.enumerated() {
            if isLower(byte) || isDigit(byte) { continue }
            if byte == hyphen, index != bytes.count - 1, bytes[index + 1] != hyphen { continue }
            throw KeyholdError.invalidInput(
                "tenant name '\(Self.printable(value))' is not a valid unit-name fragment: \(rule), no trailing or double hyphen"
            )
        }
        self.value = value
    }

    public var description: String { value }

    public init(from decoder: any Decoder) throws {
        try self.init(try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(value)
    }

    /// Renders a rejected name without control characters, so an error line stays one line.
    private static func printable(_ value: String) -> String {
        String(value.unicodeScalars.prefix(40).map { $0.properties.generalCategory == .control ? "?" : Character($0) })
    }
}
