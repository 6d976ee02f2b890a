public import AsyncHTTPClient
public import KeyholdCore
import NIOCore
import NIOHTTP1
import NIOPosix

/// Makes the daemon's requests to URLs a tenant chose (a key's own base URL, an alert webhook) as the egress gateway
/// makes a sandbox's connections, because they leave from the host's network with root's reach:
///
/// - the host name is resolved here and every address classified: link-local and special addresses (cloud metadata)
///   are refused, and loopback and private ones too unless the host's admin allowed exactly that destination;
/// - the connection goes to the address that was checked, never to a second resolution (no DNS rebinding);
/// - no redirect is followed (a 3xx is an answer like any other);
/// - the whole exchange, head and body, is bounded in time and the body in size, and the body is read only to be
///   discarded: the caller learns the status code, or that the destination failed, never the remote text.
public struct TenantDestinationClient: Sendable {
    /// What became of a request.
    public enum Outcome: Sendable, Equatable {
        /// The destination answered with this status.
        case answered(status: Int)
        /// The destination was not contacted; why, in words the tenant can act on.
        case refused(String)
        /// No answer within the bounds (refused connection, reset, timeout, TLS failure or an oversized answer): what
        /// exactly is not said, so that the daemon cannot be used to tell closed ports from filtered ones.
        case failed
    }

    /// Destinations on the host's own network the admin lets the daemon call for any tenant (`--internal-destination`).
    public let internalDestinations: [EgressRule]
    /// Names resolved before DNS (the operator's `--egress-hosts`).
    public let staticHosts: [String: [String]]
    /// The largest answer body read (the rest fails the request).
    public let maximumBodyBytes: Int

    public init(
        internalDestinations: [EgressRule] = [], staticHosts: [String: [String]] = [:], maximumBodyBytes: Int = 1 << 20
    ) {
        self.internalDestinations = internalDestinations
        self.staticHosts = staticHosts
        self.maximumBodyBytes = maximumBodyBytes
    }

    /// Sends a request to a tenant-chosen URL.
    /// - Parameters:
    ///   - request: its URL is the tenant's; headers and body are the daemon's.
    ///   - subject: what the URL is, in refusals (`the key's base URL`, `the alert webhook`).
    ///   - tenant: whose URL it is, in refusals.
    ///   - allowing: the tenant's own admin-made rules that may open a destination on the host's network (its
    ///     `--private` egress rules); the daemon-wide internal destinations always count.
    ///   - remedy: how the admin allows such a destination, given it as a rule; the tenant's `--private` egress rule by
    ///     default.
    ///   - timeout: the bound on the whole exchange.
    public func send(
        _ request: HTTPClientRequest, subject: String, tenant: String, allowing rules: [EgressRule] = [], remedy: ((EgressRule) -> String)? = nil,
        timeout: Duration
    ) async -> Outcome {
        guard let origin = UpstreamOrigin(baseURL: request.url) else { return .refused("\(subject) is not an http:// or https:// URL") }
        let check = await UpstreamAddressCheck.check(
            origin: origin, tenant: tenant, rules: rules + internalDestinations, staticHosts: staticHosts, subject: subject, remedy: remedy)
        guard case .allowed(let address) = check else {
            if case .refused(let why) = check { return .refused(why) }
            return .failed
        }
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout = .init(connect: TimeAmount(timeout), read: TimeAmount(timeout))
        configuration.decompression = .disabled
        if !origin.isAddress { configuration.dnsOverride = [origin.host: address] }
        let client = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
        let limit = maximumBodyBytes
        let outcome = await TimeLimit.first(within: timeout) { () async -> Outcome? in
            guard let response = try? await client.execute(request, timeout: TimeAmount(timeout)),
                (try? await response.body.collect(upTo: limit)) != nil
            else { return nil }
            return Outcome.answered(status: Int(response.status.code))
        }
        try? await client.shutdown()
        return outcome ?? .failed
    }

    /// Why a URL may not be stored for later requests, judged by its host when that is an address (a name is judged
    /// when it is called, as it resolves then); nil when it may.
    public func refusalOfAddress(in url: String, subject: String) -> String? {
        guard let origin = UpstreamOrigin(baseURL: url), let kind = AddressClass.of(literal: origin.host) else { return nil }
        let judged = UpstreamAddressCheck.judge(
            [(origin.host, kind)], origin: origin, tenant: "", rules: internalDestinations, subject: subject, remedy: Self.internalDestinationRemedy)
        guard case .refused(let why) = judged else { return nil }
        return why
    }

    /// The remedy for a destination on the host's network that only the daemon's flag can open (a webhook).
    public static func internalDestinationRemedy(_ rule: EgressRule) -> String {
        "start keyhold serve with --internal-destination \(rule)"
    }
}
