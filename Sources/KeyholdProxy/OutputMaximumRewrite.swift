import Foundation
import NIOCore

/// Sets a request body's output maximum (`max_tokens`, `max_completion_tokens`, `max_output_tokens`) to a clamped
/// value in place: the value's bytes are replaced, every other byte of the body stays as the agent sent it, and a
/// field the body lacks is added after the opening brace. A scan, not a parse and a re-serialization: clamping costs
/// microseconds, and numbers, key order and spacing reach the provider untouched.
///
/// Keys are compared after their escapes are decoded (`"max\u005ftokens"` is `max_tokens`), as a provider's parser
/// reads them, so an escaped spelling cannot keep its larger value.
enum OutputMaximumRewrite {
    /// The body with each top-level member named in `fields` set to `value`; nil when the body is not one JSON object.
    static func apply(_ body: ByteBuffer, fields: [String], value: Int) -> ByteBuffer? {
        let bytes = Array(body.readableBytesView)
        guard let object = JSONMembers(of: bytes) else { return nil }
        let members = object.members
        let replaced = members.filter { fields.contains($0.key) }
        let missing = fields.filter { field in !replaced.contains { $0.key == field } }
        let number = Array(String(value).utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 40)
        var position = 0
        if !missing.isEmpty {
            out += bytes[...object.openingBrace]
            position = object.openingBrace + 1
            out += Array(missing.map { "\"\($0)\":\(value)" }.joined(separator: ",").utf8)
            if !members.isEmpty { out.append(UInt8(ascii: ",")) }
        }
        for member in replaced.sorted(by: { $0.value.lowerBound < $1.value.lowerBound }) {
            out += bytes[position..<member.value.lowerBound]
            out += number
            position = member.value.upperBound
        }
        out += bytes[position...]
        return ByteBuffer(bytes: out)
    }
}
