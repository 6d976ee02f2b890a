/// The head of a plain HTTP request at the start of a connection: a `CONNECT host:port` from a client that honours
/// `HTTPS_PROXY`, or an ordinary request whose `Host` names its destination.
struct RequestHead: Equatable {
    enum Parse: Equatable {
        case incomplete
        case complete(RequestHead)
        case malformed(String)
    }

    /// The largest head accepted.
    static let maximumLength = 16_384

    var method: String
    /// The CONNECT target, or the `Host` header's value (nil when absent).
    var authority: String?
    /// Bytes up to and including the blank line.
    var length: Int

    var isConnect: Bool { method == "CONNECT" }

    /// - Parameter scanFrom: where the search for the blank line may start (bytes before it were searched already).
    static func parse(_ bytes: [UInt8], scanFrom: Int = 0) -> Parse {
        guard let end = headEnd(bytes, from: scanFrom) else {
            return bytes.count > maximumLength ? .malformed("a request head larger than 16 KiB") : .incomplete
        }
        let text = String(decoding: bytes[0..<end], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1."), requestLine[0].allSatisfy({ $0.isLetter && $0.isUppercase }) else {
            return .malformed("not an HTTP/1.x request")
        }
        let method = String(requestLine[0])
        if method == "CONNECT" { return .complete(RequestHead(method: method, authority: String(requestLine[1]), length: end + 4)) }
        let host = lines.first { $0.lowercased().hasPrefix("host:") }.map { $0.dropFirst(5).trimmingWhitespace() }
        return .complete(RequestHead(method: method, authority: host, length: end + 4))
    }

    /// Splits `host[:port]` (brackets around an IPv6 address), with `defaultPort` when none is given.
    static func split(authority: String, defaultPort: Int) -> (host: String, port: Int)? {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let rest = authority[authority.index(after: close)...]
            if rest.isEmpty { return (host, defaultPort) }
            guard rest.first == ":", let port = Int(rest.dropFirst()), (1...65535).contains(port) else { return nil }
            return (host, port)
        }
        let parts = authority.split(separator: ":", omittingEmptySubsequences: false)
        switch parts.count {
        case 1: return parts[0].isEmpty ? nil : (String(parts[0]), defaultPort)
        case 2:
            guard !parts[0].isEmpty, let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
            return (String(parts[0]), port)
        default: return nil
        }
    }

    private static func headEnd(_ bytes: [UInt8], from start: Int) -> Int? {
        guard bytes.count >= 4, start <= bytes.count - 4 else { return nil }
        for index in max(0, start)...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return index
        }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
