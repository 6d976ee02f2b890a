extension ExecPayload {
    /// A payload that does not follow the wire format. Its message never contains a payload value.
    public struct DecodingError: Error, CustomStringConvertible, Sendable, Equatable {
        public var description: String
    }

    /// Decodes a payload; the inverse of ``encode()``. `keyhold-exec` carries its own copy of this decoder.
    /// - Throws: ``DecodingError``.
    public init(decoding bytes: [UInt8]) throws {
        var reader = TokenReader(bytes: bytes)
        guard try reader.text() == Self.magic else { throw DecodingError(description: "bad magic") }
        var environment: [EnvironmentEntry] = []
        var seccomp: SeccompFilter?
        var arguments: [String] = []
        while true {
            switch try reader.text() {
            case "env":
                environment.append(EnvironmentEntry(name: try reader.text(), value: try reader.text()))
            case "arg":
                arguments.append(try reader.text())
            case "seccomp" where seccomp == nil:
                seccomp = SeccompFilter(defaultAction: try reader.action(), defaultErrno: try reader.errno())
            case "arch" where seccomp != nil:
                seccomp!.architectures.append(try reader.text())
            case "rule" where seccomp != nil:
                var rule = SeccompFilter.Rule(syscall: try reader.text(), action: try reader.action(), errno: try reader.errno())
                let count = try reader.number()
                guard count <= 6 else { throw DecodingError(description: "too many conditions") }
                for _ in 0..<count {
                    let index = try reader.number()
                    guard index <= 5, let op = SeccompPolicy.Operator(rawValue: try reader.text()) else {
                        throw DecodingError(description: "bad condition")
                    }
                    rule.conditions.append(.init(index: UInt32(index), value: try reader.number(), valueTwo: try reader.number(), op: op))
                }
                seccomp!.rules.append(rule)
            case "end":
                guard reader.isAtEnd else { throw DecodingError(description: "data after end") }
                self.init(environment: environment, seccomp: seccomp, arguments: arguments)
                return
            default:
                throw DecodingError(description: "unexpected record")
            }
        }
    }
}

/// Reads netstrings from a payload.
private struct TokenReader {
    let bytes: [UInt8]
    var offset = 0

    var isAtEnd: Bool { offset == bytes.count }

    mutating func token() throws -> ArraySlice<UInt8> {
        var length = 0
        var digits = 0
        while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) {
            length = length * 10 + Int(bytes[offset] - UInt8(ascii: "0"))
            digits += 1
            offset += 1
            guard digits <= 7 else { throw ExecPayload.DecodingError(description: "length too long") }
        }
        guard digits > 0, offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else {
            throw ExecPayload.DecodingError(description: "truncated or malformed length")
        }
        offset += 1
        guard bytes.count - offset > length, bytes[offset + length] == UInt8(ascii: ",") else {
            throw ExecPayload.DecodingError(description: "truncated or malformed field")
        }
        defer { offset += length + 1 }
        return bytes[offset..<offset + length]
    }

    mutating func text() throws -> String {
        let token = try token()
        guard let string = String(validating: token, as: UTF8.self) else {
            throw ExecPayload.DecodingError(description: "field is not UTF-8")
        }
        return string
    }

    mutating func number() throws -> UInt64 {
        guard let number = UInt64(try text()) else { throw ExecPayload.DecodingError(description: "bad number") }
        return number
    }

    mutating func errno() throws -> UInt16 {
        let number = try number()
        guard number <= UInt64(SeccompPolicy.maxErrno) else { throw ExecPayload.DecodingError(description: "bad errno") }
        return UInt16(number)
    }

    mutating func action() throws -> SeccompPolicy.Action {
        guard let action = SeccompPolicy.Action(rawValue: try text()) else {
            throw ExecPayload.DecodingError(description: "unknown action")
        }
        return action
    }
}
