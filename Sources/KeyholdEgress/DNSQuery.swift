/// One DNS question as a stub resolver sends it (RFC 1035), and the answers the sandbox's resolver gives: the
/// gateway's address for a name the sandbox may reach, "no such name" for any other.
struct DNSQuery: Equatable {
    /// A record (IPv4 address) and AAAA (IPv6).
    static let typeA: UInt16 = 1
    static let typeAAAA: UInt16 = 28

    var id: UInt16
    /// Lowercased, dot-separated, without the root's trailing dot; nil when a label is not a host name's.
    var name: String?
    var type: UInt16
    var recursionDesired: Bool
    /// The question section as received, echoed in the answer.
    var question: ArraySlice<UInt8>

    /// Parses a standard query with one question; nil for anything else (answers, other opcodes, truncated data).
    static func parse(_ bytes: [UInt8]) -> DNSQuery? {
        guard bytes.count >= 12, bytes.count <= 512 else { return nil }
        let flags = UInt16(bytes[2]) << 8 | UInt16(bytes[3])
        guard flags & 0x8000 == 0, (flags >> 11) & 0xf == 0 else { return nil }  // a query, opcode QUERY
        guard bytes[4] == 0, bytes[5] == 1 else { return nil }  // one question
        var offset = 12
        var labels: [String] = []
        var valid = true
        while true {
            guard offset < bytes.count else { return nil }
            let length = Int(bytes[offset])
            offset += 1
            if length == 0 { break }
            guard length <= 63, offset + length <= bytes.count else { return nil }
            let label = bytes[offset..<(offset + length)]
            if !label.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }) {
                valid = false
            }
            labels.append(String(decoding: label, as: UTF8.self).lowercased())
            offset += length
        }
        guard offset + 4 <= bytes.count else { return nil }
        let type = UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        return DNSQuery(
            id: UInt16(bytes[0]) << 8 | UInt16(bytes[1]), name: valid && !labels.isEmpty ? labels.joined(separator: ".") : nil, type: type,
            recursionDesired: flags & 0x0100 != 0, question: bytes[12..<(offset + 4)])
    }

    /// The answer: `address` (four bytes) for an A question when given, no record otherwise, NXDOMAIN when `exists` is false.
    func answer(exists: Bool, address: [UInt8]?) -> [UInt8] {
        var flags: UInt16 = 0x8000 | 0x0400 | 0x0080  // a response, authoritative, recursion available
        if recursionDesired { flags |= 0x0100 }
        if !exists { flags |= 3 }  // NXDOMAIN
        let record = exists && type == Self.typeA ? address : nil
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xff), UInt8(flags >> 8), UInt8(flags & 0xff), 0, 1, 0, record == nil ? 0 : 1, 0, 0, 0, 0]
        bytes += question
        if let record {
            // The question's name (a pointer to offset 12), A, IN, a TTL of 5 s, four bytes of address.
            bytes += [0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4] + record
        }
        return bytes
    }
}
