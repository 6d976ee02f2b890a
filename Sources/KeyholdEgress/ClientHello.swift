/// The server name (SNI) of a TLS ClientHello, read from the first records of a connection without decrypting
/// anything (the ClientHello is sent in the clear).
enum ClientHello {
    enum Parse: Equatable {
        /// More bytes are needed: at least `needed` in all before the next parse can say more.
        case incomplete(needed: Int)
        /// A complete ClientHello; `serverName` is nil when the client sent none (a connection to an IP address).
        case complete(serverName: String?)
        case malformed(String)
    }

    /// The largest ClientHello accepted (post-quantum key shares make them a few KB; 64 KiB is ample).
    static let maximumLength = 65_536

    /// Reassembles the handshake message from the TLS records at the start of `bytes` and reads its SNI.
    static func parse(_ bytes: [UInt8]) -> Parse {
        var handshake: [UInt8] = []
        var offset = 0
        var records = 0
        while true {
            // A ClientHello takes one record, a few with large key shares: many tiny records are an attack on the parser.
            records += 1
            guard records <= 16 else { return .malformed("a ClientHello split into more than 16 records") }
            guard bytes.count >= offset + 5 else { return .incomplete(needed: offset + 5) }
            guard bytes[offset] == 0x16, bytes[offset + 1] == 3 else { return .malformed("not a TLS handshake record") }
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            guard length > 0 else { return .malformed("an empty TLS record") }
            guard bytes.count >= offset + 5 + length else { return .incomplete(needed: offset + 5 + length) }
            handshake += bytes[(offset + 5)..<(offset + 5 + length)]
            offset += 5 + length
            guard handshake.count >= 4 else { continue }
            guard handshake[0] == 1 else { return .malformed("the first handshake message is not a ClientHello") }
            let messageLength = Int(handshake[1]) << 16 | Int(handshake[2]) << 8 | Int(handshake[3])
            guard messageLength <= maximumLength else { return .malformed("a ClientHello larger than 64 KiB") }
            if handshake.count >= 4 + messageLength { return serverName(in: handshake[4..<(4 + messageLength)]) }
        }
    }

    private static func serverName(in body: ArraySlice<UInt8>) -> Parse {
        var reader = Reader(bytes: body)
        guard reader.skip(2 + 32),  // legacy version, random
            let sessionLength = reader.uint8(), reader.skip(Int(sessionLength)),
            let suitesLength = reader.uint16(), reader.skip(Int(suitesLength)),
            let compressionLength = reader.uint8(), reader.skip(Int(compressionLength))
        else { return .malformed("a truncated ClientHello") }
        guard let extensionsLength = reader.uint16() else { return .complete(serverName: nil) }
        guard var extensions = reader.sub(Int(extensionsLength)) else { return .malformed("truncated ClientHello extensions") }
        while let type = extensions.uint16() {
            guard let length = extensions.uint16(), var data = extensions.sub(Int(length)) else {
                return .malformed("a truncated ClientHello extension")
            }
            guard type == 0 else { continue }  // server_name (RFC 6066)
            guard let listLength = data.uint16(), var list = data.sub(Int(listLength)) else { return .malformed("a malformed server_name") }
            while let nameType = list.uint8() {
                guard let nameLength = list.uint16(), let name = list.sub(Int(nameLength)) else { return .malformed("a malformed server_name") }
                if nameType == 0 {
                    guard name.bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return .malformed("a server name that is not ASCII") }
                    return .complete(serverName: String(decoding: name.bytes, as: UTF8.self))
                }
            }
            return .complete(serverName: nil)
        }
        return .complete(serverName: nil)
    }

    private struct Reader {
        var bytes: ArraySlice<UInt8>

        mutating func uint8() -> UInt8? {
            guard let first = bytes.first else { return nil }
            bytes = bytes.dropFirst()
            return first
        }

        mutating func uint16() -> UInt16? {
            guard bytes.count >= 2 else { return nil }
            let value = UInt16(bytes[bytes.startIndex]) << 8 | UInt16(bytes[bytes.startIndex + 1])
            bytes = bytes.dropFirst(2)
            return value
        }

        mutating func skip(_ count: Int) -> Bool {
            guard bytes.count >= count else { return false }
            bytes = bytes.dropFirst(count)
            return true
        }

        mutating func sub(_ count: Int) -> Reader? {
            guard bytes.count >= count else { return nil }
            let part = bytes.prefix(count)
            bytes = bytes.dropFirst(count)
            return Reader(bytes: part)
        }
    }
}
