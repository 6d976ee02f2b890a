import Foundation

/// A value bound to or read from a statement, whichever database runs it.
enum StoreValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob(Data)
    case boolean(Bool)
}

/// A Swift value a statement can take as an argument.
protocol StoreArgument {
    var storeValue: StoreValue { get }
}

extension Int64: StoreArgument { var storeValue: StoreValue { .integer(self) } }
extension Int: StoreArgument { var storeValue: StoreValue { .integer(Int64(self)) } }
extension Double: StoreArgument { var storeValue: StoreValue { .real(self) } }
extension String: StoreArgument { var storeValue: StoreValue { .text(self) } }
extension Data: StoreArgument { var storeValue: StoreValue { .blob(self) } }
extension Bool: StoreArgument { var storeValue: StoreValue { .boolean(self) } }
extension Optional: StoreArgument where Wrapped: StoreArgument {
    var storeValue: StoreValue { map(\.storeValue) ?? .null }
}

/// A Swift value a column can be read as.
protocol StoreColumn {
    /// The value, or nil when the column's value cannot be read as this type.
    static func read(_ value: StoreValue) -> Self?
}

extension Int64: StoreColumn {
    static func read(_ value: StoreValue) -> Int64? {
        switch value {
        case .integer(let integer): integer
        case .boolean(let boolean): boolean ? 1 : 0
        case .real(let real): Int64(exactly: real)
        default: nil
        }
    }
}
extension Int: StoreColumn {
    static func read(_ value: StoreValue) -> Int? { Int64.read(value).map { Int($0) } }
}
extension Double: StoreColumn {
    static func read(_ value: StoreValue) -> Double? {
        switch value {
        case .real(let real): real
        case .integer(let integer): Double(integer)
        default: nil
        }
    }
}
extension String: StoreColumn {
    static func read(_ value: StoreValue) -> String? {
        if case .text(let text) = value { return text }
        return nil
    }
}
extension Data: StoreColumn {
    static func read(_ value: StoreValue) -> Data? {
        if case .blob(let data) = value { return data }
        return nil
    }
}
extension Bool: StoreColumn {
    static func read(_ value: StoreValue) -> Bool? {
        switch value {
        case .boolean(let boolean): boolean
        case .integer(let integer): integer != 0
        default: nil
        }
    }
}
extension Optional: StoreColumn where Wrapped: StoreColumn {
    static func read(_ value: StoreValue) -> Wrapped?? {
        if value == .null { return .some(nil) }
        return Wrapped.read(value).map { .some($0) }
    }
}

/// One result row: its columns by name.
struct StoreRow {
    let columns: [String: StoreValue]

    /// The column's value as `T`. A column the query did not select, or a value of another type, is a programming
    /// error in the store (as it is in GRDB), not bad input.
    subscript<T: StoreColumn>(_ name: String) -> T {
        guard let value = T.read(columns[name] ?? .null) else {
            preconditionFailure("the store read column '\(name)' as \(T.self), but it holds \(columns[name] ?? .null)")
        }
        return value
    }
}
