import Foundation
import Glibc
import KeyholdCore
import NIOCore
import NIOPosix

/// Resolves a destination's name for the gateway: the operator's static entries first (`--egress-hosts`, in
/// `/etc/hosts` format), then the host's resolver. Every address is classified, so that a name that resolves to
/// the host's own network (DNS rebinding) is caught before any connection.
public struct EgressResolver: Sendable {
    /// Static names, lowercased, to their addresses.
    public let staticEntries: [String: [String]]
    /// How a name without a static entry is resolved: the host's resolver (getaddrinfo(3)), which blocks.
    let hostLookup: @Sendable (_ host: String, _ port: Int) throws -> [SocketAddress]

    public init(staticEntries: [String: [String]] = [:]) {
        self.init(staticEntries: staticEntries, hostLookup: Self.getaddrinfo)
    }

    /// A resolver whose names without a static entry are looked up by `hostLookup` (tests stand in for slow names).
    init(staticEntries: [String: [String]], hostLookup: @escaping @Sendable (_ host: String, _ port: Int) throws -> [SocketAddress]) {
        self.staticEntries = staticEntries
        self.hostLookup = hostLookup
    }

    /// Reads a file in `/etc/hosts` format.
    /// - Throws: `KeyholdError.invalidInput` naming the line that is not `ADDRESS NAME...`.
    public static func loading(hostsFile path: String) throws -> EgressResolver {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw KeyholdError.invalidInput("--egress-hosts \(path): cannot read the file")
        }
        var entries: [String: [String]] = [:]
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0].split(whereSeparator: \.isWhitespace)
            guard let address = fields.first else { continue }
            guard AddressClass.of(literal: String(address)) != nil, fields.count >= 2 else {
                throw KeyholdError.invalidInput("--egress-hosts \(path):\(number + 1): expected 'ADDRESS NAME...' with an IP address")
            }
            for name in fields.dropFirst() { entries[name.lowercased(), default: []].append(String(address)) }
        }
        return EgressResolver(staticEntries: entries)
    }

    /// The addresses of `host` (an IP address resolves to itself); a lookup on the host's resolver waits for
    /// `route`'s turn on `pool`.
    func resolve(_ host: String, port: Int, for route: EgressRoute, on pool: FairLookupPool) async throws -> [SocketAddress] {
        if AddressClass.of(literal: host) != nil { return [try SocketAddress(ipAddress: host, port: port)] }
        if let fixed = staticEntries[host.lowercased()] { return try fixed.map { try SocketAddress(ipAddress: $0, port: port) } }
        let lookup = hostLookup
        return try await pool.run(for: ObjectIdentifier(route)) { try lookup(host, port) }
    }

    private static func getaddrinfo(_ host: String, port: Int) throws -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = Glibc.getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw EgressRefusal("the name does not resolve (\(String(cString: gai_strerror(status))))")
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let entry = next {
            if let address = entry.pointee.ai_addr {
                switch entry.pointee.ai_family {
                case AF_INET:
                    address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
                case AF_INET6:
                    address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { addresses.append(SocketAddress($0.pointee, host: host)) }
                default: break
                }
            }
            next = entry.pointee.ai_next
        }
        return addresses
    }
}

extension SocketAddress {
    /// What the address reaches.
    var addressClass: AddressClass {
        guard let text = ipAddress else { return .special }
        return AddressClass.of(literal: text) ?? .special
    }
}

/// Why the gateway refused a connection: logged with the tenant and the destination, never a payload.
struct EgressRefusal: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
