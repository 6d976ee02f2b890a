import KeyholdCore
import KeyholdOrchestration

/// A `HOST:PORT` a listener binds, as given on the command line.
public enum ListenAddress {
    /// Parses `text` given to `option`.
    /// - Parameter loopbackOnly: refuse anything but 127.0.0.0/8, ::1 and localhost, saying `why`.
    /// - Returns: the host (brackets removed from an IPv6 address) and the port.
    /// - Throws: `KeyholdError.invalidInput` naming the option, with an example.
    public static func parse(_ text: String, option: String, example: String, loopbackOnly: Bool, why: String) throws -> (String, Int) {
        guard let colon = text.lastIndex(of: ":"), colon != text.startIndex, let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            throw KeyholdError.invalidInput("\(option) '\(text.prefix(100))' must be HOST:PORT with a port from 1 to 65535, e.g. \(example)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let octets = host.split(separator: ".", omittingEmptySubsequences: false)
        let loopback = ["::1", "localhost"].contains(host) || (octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil })
        if loopbackOnly && !loopback {
            throw KeyholdError.invalidInput("\(option) must be a loopback address (127.0.0.0/8, ::1 or localhost): \(why)")
        }
        return (host, port)
    }
}
