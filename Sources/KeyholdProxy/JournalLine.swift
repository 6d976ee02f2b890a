import Foundation

/// The journal's line format: the entry's 21 fields, tab-separated, ending in a newline.
///
/// Text fields escape backslash, tab, newline and carriage return (`\\`, `\t`, `\n`, `\r`); an absent sandbox, key,
/// clamp or response is an empty field. Lines of 17 fields (journals written before those were added) are read as
/// the platform's key, unclamped, without a response. A line with a wrong field count or a malformed number is
/// rejected whole.
enum JournalLine {
    static let fieldCount = 21
    /// The field count of lines written before the key fields.
    static let formerFieldCount = 17

    static func encode(_ entry: JournalEntry, into line: inout [UInt8]) {
        text(entry.kind, &line)
        text(entry.id, &line)
        integer(entry.tenantID, &line)
        line.append(0x09)
        if let sandbox = entry.sandboxID { integer(sandbox, &line) }
        line.append(0x09)
        text(entry.model, &line)
        for value in [
            Int64(entry.reservedTokens), entry.reservedPicoUSD, Int64(entry.input), Int64(entry.cachedInput), Int64(entry.cacheWrite),
            Int64(entry.output), Int64(entry.reasoning), entry.picoUSD, Int64(entry.status),
        ] {
            integer(value, &line)
            line.append(0x09)
        }
        text(entry.charged, &line)
        line.append(contentsOf: entry.latencyMs.description.utf8)
        line.append(0x09)
        text(entry.time, &line)
        if let provider = entry.keyProvider, let version = entry.keyVersion {
            text(provider, &line)
            integer(Int64(version), &line)
        } else {
            line.append(0x09)
        }
        line.append(0x09)
        if let clampedFrom = entry.clampedFrom { integer(Int64(clampedFrom), &line) }
        line.append(0x09)
        if let responseID = entry.responseID { escape(responseID, &line) }
        line.append(0x0A)
    }

    private static func text(_ value: String, _ line: inout [UInt8]) {
        escape(value, &line)
        line.append(0x09)
    }

    private static func escape(_ value: String, _ line: inout [UInt8]) {
        for byte in value.utf8 {
            switch byte {
            case 0x5C: line.append(contentsOf: [0x5C, 0x5C])
            case 0x09: line.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x0A: line.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: line.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            default: line.append(byte)
            }
        }
    }

    private static func integer(_ value: Int64, _ line: inout [UInt8]) {
        if value < 0 { line.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buffer in
            var count = 0
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
            line.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// The entry of one line (without its newline), or nil when the line is not a whole entry.
    static func decode(_ line: UnsafeBufferPointer<UInt8>) -> JournalEntry? {
        var fields: [UnsafeBufferPointer<UInt8>] = []
        fields.reserveCapacity(fieldCount)
        var start = 0
        for index in line.indices where line[index] == 0x09 {
            fields.append(UnsafeBufferPointer(rebasing: line[start..<index]))
            start = index + 1
        }
        fields.append(UnsafeBufferPointer(rebasing: line[start...]))
        guard fields.count == fieldCount || fields.count == formerFieldCount, let kind = unescape(fields[0]), let id = unescape(fields[1]),
            let tenant = integer(fields[2]),
            let model = unescape(fields[4]), let charged = unescape(fields[14]), let time = unescape(fields[16]),
            let latency = Double(String(decoding: fields[15], as: UTF8.self))
        else { return nil }
        let sandbox: Int64?
        if fields[3].isEmpty {
            sandbox = nil
        } else {
            guard let value = integer(fields[3]) else { return nil }
            sandbox = value
        }
        var numbers: [Int64] = []
        numbers.reserveCapacity(9)
        for field in fields[5...13] {
            guard let value = integer(field) else { return nil }
            numbers.append(value)
        }
        guard numbers.allSatisfy({ $0 >= Int64(Int.min) && $0 <= Int64(Int.max) }) else { return nil }
        var key: (String, Int)?
        if fields.count == fieldCount, !fields[17].isEmpty {
            guard let provider = unescape(fields[17]), let version = integer(fields[18]), version >= 0, version <= Int64(Int.max) else {
                return nil
            }
            key = (provider, Int(version))
        }
        var clampedFrom: Int?
        if fields.count == fieldCount, !fields[19].isEmpty {
            guard let value = integer(fields[19]), value > 0, value <= Int64(Int.max) else { return nil }
            clampedFrom = Int(value)
        }
        var responseID: String?
        if fields.count == fieldCount, !fields[20].isEmpty {
            guard let value = unescape(fields[20]) else { return nil }
            responseID = value
        }
        return JournalEntry(
            kind: kind, id: id, tenantID: tenant, sandboxID: sandbox, model: model, reservedTokens: Int(numbers[0]), reservedPicoUSD: numbers[1],
            input: Int(numbers[2]), cachedInput: Int(numbers[3]), cacheWrite: Int(numbers[4]), output: Int(numbers[5]), reasoning: Int(numbers[6]),
            picoUSD: numbers[7], status: Int(numbers[8]), charged: charged, latencyMs: latency, time: time, keyProvider: key?.0,
            keyVersion: key?.1, clampedFrom: clampedFrom, responseID: responseID
        )
    }

    private static func integer(_ field: UnsafeBufferPointer<UInt8>) -> Int64? {
        var digits = field[...]
        let negative = digits.first == UInt8(ascii: "-")
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.count <= 19 else { return nil }
        var magnitude: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            magnitude = magnitude * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        if negative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }

    private static func unescape(_ field: UnsafeBufferPointer<UInt8>) -> String? {
        guard field.contains(0x5C) else { return String(validating: field, as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(field.count)
        var escaped = false
        for byte in field {
            if escaped {
                switch byte {
                case 0x5C: bytes.append(0x5C)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                default: return nil
                }
                escaped = false
            } else if byte == 0x5C {
                escaped = true
            } else {
                bytes.append(byte)
            }
        }
        return escaped ? nil : String(validating: bytes, as: UTF8.self)
    }
}
