/// A coding key for any string, used to list and reject unknown JSON keys.
struct AnyCodingKey: CodingKey, Hashable {
    var stringValue: String
    var intValue: Int?

    init(_ string: String) {
        self.stringValue = string
        self.intValue = nil
    }

    init?(stringValue: String) { self.init(stringValue) }

    init?(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
    }
}

/// Formats a coding path as `a.b[2].c`.
func fieldPath(_ path: [any CodingKey]) -> String {
    var result = ""
    for key in path {
        if let index = key.intValue {
            result += "[\(index)]"
        } else {
            if !result.isEmpty { result += "." }
            result += key.stringValue
        }
    }
    return result
}

extension Decoder {
    /// Throws ``ProfileError/Code/unknownField`` for the first key of this object not in `known`.
    func rejectUnknownKeys(_ known: Set<String>) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        let unknown = container.allKeys.map(\.stringValue).filter { !known.contains($0) }.sorted()
        if let first = unknown.first {
            throw ProfileError(.unknownField, field: fieldPath(codingPath + [AnyCodingKey(first)]), "unknown field")
        }
    }
}

/// Converts a Foundation decoding error (or a ``ProfileError`` thrown from `init(from:)`) into a ``ProfileError``.
func profileError(from error: any Error) -> ProfileError {
    if let error = error as? ProfileError { return error }
    guard let error = error as? DecodingError else {
        return ProfileError(.malformed, "\(error)")
    }
    switch error {
    case .typeMismatch(let type, let context):
        return ProfileError(.wrongType, field: nonEmpty(fieldPath(context.codingPath)), "expected \(jsonTypeName(type))")
    case .valueNotFound(let type, let context):
        return ProfileError(.wrongType, field: nonEmpty(fieldPath(context.codingPath)), "expected \(jsonTypeName(type)), found null")
    case .keyNotFound(let key, let context):
        return ProfileError(.missingField, field: fieldPath(context.codingPath + [key]), "missing field")
    case .dataCorrupted(let context):
        if context.codingPath.isEmpty {
            return ProfileError(.malformed, "not valid JSON")
        }
        return ProfileError(.invalidValue, field: fieldPath(context.codingPath), context.debugDescription)
    @unknown default:
        return ProfileError(.malformed, "\(error)")
    }
}

private func nonEmpty(_ string: String) -> String? { string.isEmpty ? nil : string }

private func jsonTypeName(_ type: Any.Type) -> String {
    switch type {
    case is Bool.Type: return "a boolean"
    case is String.Type: return "a string"
    case is Int.Type, is Int32.Type, is Int64.Type, is UInt.Type, is UInt16.Type, is UInt32.Type, is UInt64.Type:
        return "an integer"
    case is Double.Type: return "a number"
    default:
        let name = String(describing: type)
        if name.hasPrefix("Array") { return "an array" }
        if name.hasPrefix("Dictionary") { return "an object" }
        return "a value of type \(name)"
    }
}
