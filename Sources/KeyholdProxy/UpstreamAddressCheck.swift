import Foundation
import KeyholdCore
import NIOPosix

/// The check a tenant-chosen upstream (a brokered key's own base URL) passes before the daemon sends it anything from
/// the host's network, as the egress gateway checks a sandbox's destinations: the name is resolved here, every address
/// is classified, and the connection goes to an address that was checked (never resolved again by the connect).
/// Link-local and special addresses (cloud metadata) are refused; loopback and private ones need the host's admin to
/// have allowed exactly that destination for the tenant (`keyhold tenant allow-egress TENANT DEST --private`).
enum UpstreamAddressCheck {
    enum Outcome: Sendable {
        /// The address to connect to.
        case allowed(address: String)
        /// Why not, in words the tenant can act on (no remote text).
        case refused(String)
    }

    /// How long a check holds before the name is resolved again.
    static let lifetime: Duration = .seconds(60)

    /// - Parameters:
    ///   - subject: what the destination is, in refusals (`the key's base URL`, `the alert webhook`).
    ///   - remedy: the admin's way to allow a destination on the host's own network, given it as a rule.
    ///   - staticHosts: names resolved before DNS (the operator's `--egress-hosts`).
    static func check(
        origin: UpstreamOrigin, tenant: String, rules: [EgressRule], staticHosts: [String: [String]] = [:], subject: String = "the key's base URL",
        remedy: ((EgressRule) -> String)? = nil
    ) async -> Outcome {
        let addresses: [(text: String, kind: AddressClass)]
        if let literal = AddressClass.of(literal: origin.host) {
            addresses = [(origin.host, literal)]
        } else if let fixed = staticHosts[origin.host.lowercased()] {
            addresses = fixed.compactMap { address in AddressClass.of(literal: address).map { (address, $0) } }
        } else {
            do {
                addresses = try await NIOThreadPool.singleton.runIfActive { try resolve(origin.host) }
            } catch {
                return .refused("\(subject)'s host \(origin.host) does not resolve (\(error)); fix \(subject)")
            }
        }
        return judge(addresses, origin: origin, tenant: tenant, rules: rules, subject: subject, remedy: remedy)
    }

    /// The verdict on addresses a destination has (resolved, or its literal address). A refusal names the scheme, host
    /// and port only: a webhook's path often carries a secret, and refusals are logged and answered.
    static func judge(
        _ addresses: [(text: String, kind: AddressClass)], origin: UpstreamOrigin, tenant: String, rules: [EgressRule], subject: String,
        remedy: ((EgressRule) -> String)?
    ) -> Outcome {
        guard let first = addresses.first else { return .refused("\(subject)'s host \(origin.host) has no address") }
        if let never = addresses.first(where: { $0.kind.isNeverReachable }) {
            return .refused("\(subject)'s host \(origin.host) resolves to a \(never.kind.rawValue) address, which is never reachable")
        }
        if addresses.contains(where: { $0.kind.needsPrivateFlag }) {
            let scheme: EgressRule.Scheme = origin.isTLS ? .https : .http
            let allowed = rules.contains { $0.allowPrivate && $0.scheme == scheme && $0.covers(host: origin.host, port: origin.port) }
            guard allowed else {
                let destination = EgressRule(scheme: scheme, host: origin.host, port: origin.port, allowPrivate: true)
                let allow = remedy?(destination) ?? "keyhold tenant allow-egress \(tenant) \(destination) --private"
                let place = "\(origin.isTLS ? "https" : "http")://\(origin.hostHeader)"
                return .refused("\(subject) \(place) is on the host's own network; the host's admin must allow it first (\(allow))")
            }
        }
        return .allowed(address: first.text)
    }

    /// Every address of a name (getaddrinfo), with its class.
    private static func resolve(_ host: String) throws -> [(text: String, kind: AddressClass)] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, nil, &hints, &list)
        guard status == 0 else { throw ResolutionFailure(reason: String(cString: gai_strerror(status))) }
        defer { freeaddrinfo(list) }
        var found: [(String, AddressClass)] = []
        var next = list
        while let entry = next {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = entry.pointee.ai_addr,
                getnameinfo(address, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if let kind = AddressClass.of(literal: text) { found.append((text, kind)) }
            }
            next = entry.pointee.ai_next
        }
        return found
    }

    struct ResolutionFailure: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }
}
