public import CSeccomp
import Glibc

/// A decoded payload. Every pointer points into the input buffer, where each field was
/// NUL-terminated in place (over its netstring's `,`): no copy of a secret is made.
/// The format is described on `ExecPayload` in KeyholdSandbox; this is its Foundation-free decoder, used by
/// keyhold-exec (which links nothing but Glibc and libseccomp) and by the fuzzer.
public struct Payload {
    /// One variable to export: both pointers are NUL-terminated C strings inside the input buffer.
    public struct EnvironmentEntry {
        public var name: UnsafeMutablePointer<CChar>
        public var value: UnsafeMutablePointer<CChar>
    }

    /// One seccomp rule: a syscall name, the action on a match, and up to six argument conditions.
    public struct Rule {
        public var syscall: UnsafeMutablePointer<CChar>
        public var action: UInt32
        public var conditions: [scmp_arg_cmp]
    }

    /// The seccomp filter: its default action, the architectures it covers, and its rules.
    public struct Filter {
        public var defaultAction: UInt32
        public var architectures: [UnsafeMutablePointer<CChar>] = []
        public var rules: [Rule] = []
    }

    public var environment: [EnvironmentEntry] = []
    public var filter: Filter?
    /// The agent's argv for a pooled launch (`--pooled`), NULL-terminated when not empty.
    public var arguments: [UnsafeMutablePointer<CChar>?] = []
}

/// Why a payload was refused; the message never contains a payload value.
public struct PayloadError: Error {
    public var message: String
}

/// One netstring's content, NUL-terminated in place.
struct Field {
    var pointer: UnsafeMutablePointer<UInt8>
    var count: Int

    var cString: UnsafeMutablePointer<CChar> {
        UnsafeMutableRawPointer(pointer).assumingMemoryBound(to: CChar.self)
    }

    func equals(_ literal: StaticString) -> Bool {
        count == literal.utf8CodeUnitCount && memcmp(pointer, literal.utf8Start, count) == 0
    }

    var containsNUL: Bool { memchr(pointer, 0, count) != nil }
}

extension Payload {
    /// Decodes `base[0..<count]`, writing a NUL after each field (over its netstring's `,`): the payload's pointers
    /// point into that buffer, which must outlive them.
    public init(decoding base: UnsafeMutablePointer<UInt8>, count: Int) throws(PayloadError) {
        var reader = FieldReader(base: base, count: count)
        guard try reader.next().equals("keyhold-exec/1") else { throw PayloadError(message: "not a keyhold-exec/1 payload") }
        while true {
            let kind = try reader.next()
            if kind.equals("env") {
                let name = try reader.next()
                let value = try reader.next()
                guard Self.isVariableName(name) else {
                    throw PayloadError(message: "environment entry \(environment.count): invalid variable name")
                }
                guard !value.containsNUL else {
                    throw PayloadError(message: "environment entry \(environment.count): value contains NUL")
                }
                environment.append(EnvironmentEntry(name: name.cString, value: value.cString))
            } else if kind.equals("arg") {
                let argument = try reader.next()
                guard !argument.containsNUL else { throw PayloadError(message: "argument \(arguments.count) contains NUL") }
                arguments.append(argument.cString)
            } else if kind.equals("seccomp"), filter == nil {
                filter = Filter(defaultAction: try reader.action())
            } else if kind.equals("arch"), filter != nil {
                filter!.architectures.append(try reader.name())
            } else if kind.equals("rule"), filter != nil {
                let index = filter!.rules.count
                let syscall = try reader.name()
                let action = try reader.action()
                let count = try reader.number()
                guard count <= 6 else { throw PayloadError(message: "seccomp rule \(index): too many conditions") }
                var conditions: [scmp_arg_cmp] = []
                for _ in 0..<count {
                    let argument = try reader.number()
                    let op = try reader.comparison()
                    let value = try reader.number()
                    let valueTwo = try reader.number()
                    guard argument <= 5 else { throw PayloadError(message: "seccomp rule \(index): bad argument index") }
                    conditions.append(scmp_arg_cmp(arg: UInt32(argument), op: op, datum_a: value, datum_b: valueTwo))
                }
                filter!.rules.append(Rule(syscall: syscall, action: action, conditions: conditions))
            } else if kind.equals("end") {
                guard reader.isAtEnd else { throw PayloadError(message: "data after the end record") }
                if !arguments.isEmpty { arguments.append(nil) }
                return
            } else {
                throw PayloadError(message: "unexpected record at byte \(reader.offset)")
            }
        }
    }

    /// A letter or `_`, then letters, digits or `_`.
    static func isVariableName(_ field: Field) -> Bool {
        guard field.count > 0 else { return false }
        for index in 0..<field.count {
            let byte = field.pointer[index]
            let isLetter = (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x5F
            let isDigit = (0x30...0x39).contains(byte)
            if !(isLetter || (isDigit && index > 0)) { return false }
        }
        return true
    }
}

/// Reads netstrings (`<length>:<bytes>,`) from the input buffer.
struct FieldReader {
    let base: UnsafeMutablePointer<UInt8>
    let count: Int
    var offset = 0

    var isAtEnd: Bool { offset == count }

    mutating func next() throws(PayloadError) -> Field {
        var length = 0
        var digits = 0
        while offset < count, (0x30...0x39).contains(base[offset]) {
            length = length * 10 + Int(base[offset] - 0x30)
            digits += 1
            offset += 1
            if digits > 7 { throw PayloadError(message: "field length too long at byte \(offset)") }
        }
        guard digits > 0, offset < count, base[offset] == UInt8(ascii: ":") else {
            throw PayloadError(message: "truncated or malformed field length at byte \(offset)")
        }
        offset += 1
        guard count - offset > length, base[offset + length] == UInt8(ascii: ",") else {
            throw PayloadError(message: "truncated or malformed field at byte \(offset)")
        }
        let field = Field(pointer: base + offset, count: length)
        base[offset + length] = 0  // NUL-terminate in place
        offset += length + 1
        return field
    }

    /// A field used as a C string (syscall or architecture name): must not contain NUL.
    mutating func name() throws(PayloadError) -> UnsafeMutablePointer<CChar> {
        let field = try next()
        guard field.count > 0, !field.containsNUL else { throw PayloadError(message: "bad name at byte \(offset)") }
        return field.cString
    }

    mutating func number() throws(PayloadError) -> UInt64 {
        let field = try next()
        guard field.count > 0, field.count <= 20 else { throw PayloadError(message: "bad number at byte \(offset)") }
        var value: UInt64 = 0
        for index in 0..<field.count {
            let byte = field.pointer[index]
            guard (0x30...0x39).contains(byte) else { throw PayloadError(message: "bad number at byte \(offset)") }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - 0x30))
            if overflow1 || overflow2 { throw PayloadError(message: "number out of range at byte \(offset)") }
            value = sum
        }
        return value
    }

    /// An action name followed by its errno, as libseccomp's action value.
    mutating func action() throws(PayloadError) -> UInt32 {
        let name = try next()
        let errnoValue = try number()
        guard errnoValue <= 4095 else { throw PayloadError(message: "errno out of range at byte \(offset)") }
        if name.equals("SCMP_ACT_ALLOW") { return keyhold_scmp_act_allow() }
        if name.equals("SCMP_ACT_ERRNO") { return keyhold_scmp_act_errno(UInt16(errnoValue)) }
        if name.equals("SCMP_ACT_KILL_PROCESS") { return keyhold_scmp_act_kill_process() }
        if name.equals("SCMP_ACT_KILL_THREAD") || name.equals("SCMP_ACT_KILL") { return keyhold_scmp_act_kill_thread() }
        if name.equals("SCMP_ACT_LOG") { return keyhold_scmp_act_log() }
        if name.equals("SCMP_ACT_TRAP") { return keyhold_scmp_act_trap() }
        throw PayloadError(message: "unknown seccomp action at byte \(offset)")
    }

    mutating func comparison() throws(PayloadError) -> scmp_compare {
        let name = try next()
        if name.equals("SCMP_CMP_NE") { return SCMP_CMP_NE }
        if name.equals("SCMP_CMP_LT") { return SCMP_CMP_LT }
        if name.equals("SCMP_CMP_LE") { return SCMP_CMP_LE }
        if name.equals("SCMP_CMP_EQ") { return SCMP_CMP_EQ }
        if name.equals("SCMP_CMP_GE") { return SCMP_CMP_GE }
        if name.equals("SCMP_CMP_GT") { return SCMP_CMP_GT }
        if name.equals("SCMP_CMP_MASKED_EQ") { return SCMP_CMP_MASKED_EQ }
        throw PayloadError(message: "unknown comparison at byte \(offset)")
    }
}
