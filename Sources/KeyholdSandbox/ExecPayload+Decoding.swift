import CSeccomp
import KeyholdExecPayload

extension ExecPayload {
    /// A payload that does not follow the wire format. Its message never contains a payload value.
    public struct DecodingError: Error, CustomStringConvertible, Sendable, Equatable {
        public var description: String
    }

    /// Decodes a payload; the inverse of ``encode()``, through keyhold-exec's own decoder (`KeyholdExecPayload`), so
    /// that what tests read is what the launcher reads. `SCMP_ACT_KILL` reads back as its current name,
    /// `SCMP_ACT_KILL_THREAD` (libseccomp gives both one value).
    /// - Throws: ``DecodingError``.
    public init(decoding bytes: [UInt8]) throws {
        var buffer = bytes
        self = try buffer.withUnsafeMutableBufferPointer { buffer throws -> ExecPayload in
            guard let base = buffer.baseAddress else { throw DecodingError(description: "empty payload") }
            let decoded: Payload
            do throws(PayloadError) {
                decoded = try Payload(decoding: base, count: buffer.count)
            } catch {
                throw DecodingError(description: error.message)
            }
            // Every pointer points into `buffer`: each is copied out before it goes.
            return ExecPayload(
                environment: try decoded.environment.map { EnvironmentEntry(name: try Self.text($0.name), value: try Self.text($0.value)) },
                seccomp: try decoded.filter.map(Self.filter), arguments: try decoded.arguments.compactMap { $0 }.map(Self.text))
        }
    }

    private static func filter(_ filter: Payload.Filter) throws(DecodingError) -> SeccompFilter {
        let (defaultAction, defaultErrno) = try action(filter.defaultAction)
        var result = SeccompFilter(
            defaultAction: defaultAction, defaultErrno: defaultErrno, architectures: try filter.architectures.map(Self.text))
        for rule in filter.rules {
            let (action, errno) = try action(rule.action)
            result.rules.append(
                SeccompFilter.Rule(
                    syscall: try text(rule.syscall), action: action, errno: errno, conditions: try rule.conditions.map(Self.condition)))
        }
        return result
    }

    /// A libseccomp action value as the policy's action and errno.
    private static func action(_ value: UInt32) throws(DecodingError) -> (SeccompPolicy.Action, UInt16) {
        let errnoBase = keyhold_scmp_act_errno(0)
        switch value {
        case keyhold_scmp_act_allow(): return (.allow, 0)
        case keyhold_scmp_act_kill_process(): return (.killProcess, 0)
        case keyhold_scmp_act_kill_thread(): return (.killThread, 0)
        case keyhold_scmp_act_log(): return (.log, 0)
        case keyhold_scmp_act_trap(): return (.trap, 0)
        case _ where value & 0xFFFF_0000 == errnoBase: return (.errno, UInt16(value & 0xFFFF))
        default: throw DecodingError(description: "unknown seccomp action")
        }
    }

    private static func condition(_ condition: scmp_arg_cmp) throws(DecodingError) -> SeccompPolicy.Argument {
        let operators: [(scmp_compare, SeccompPolicy.Operator)] = [
            (SCMP_CMP_NE, .notEqual), (SCMP_CMP_LT, .lessThan), (SCMP_CMP_LE, .lessOrEqual), (SCMP_CMP_EQ, .equal),
            (SCMP_CMP_GE, .greaterOrEqual), (SCMP_CMP_GT, .greaterThan), (SCMP_CMP_MASKED_EQ, .maskedEqual),
        ]
        guard let op = operators.first(where: { $0.0 == condition.op })?.1 else { throw DecodingError(description: "bad condition") }
        return SeccompPolicy.Argument(index: condition.arg, value: condition.datum_a, valueTwo: condition.datum_b, op: op)
    }

    /// A field as text: it must be UTF-8.
    private static func text(_ pointer: UnsafeMutablePointer<CChar>) throws(DecodingError) -> String {
        guard let text = String(validatingCString: pointer) else { throw DecodingError(description: "field is not UTF-8") }
        return text
    }
}
