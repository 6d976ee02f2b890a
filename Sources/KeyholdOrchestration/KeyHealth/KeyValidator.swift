public import AsyncHTTPClient
import Foundation
public import KeyholdCore
public import KeyholdProxy
public import KeyholdVault
public import NIOCore
import NIOHTTP1

/// What a provider said about a key: its health, the HTTP status, and a one-line reason (never the key).
public struct KeyCheck: Sendable, Equatable {
    public var health: KeyHealth
    public var status: Int?
    public var message: String

    /// Whether the key may be stored: the provider accepted it (perhaps while rate-limiting it).
    public var valid: Bool { health == .ok || health == .rateLimited }
}

/// Checks a key against its provider with the cheapest authenticated request (listing models).
///
/// A key's own base URL is the tenant's choice: it is reached only through `TenantDestinationClient` (checked
/// address, no redirect, bounded, no remote text), while the providers' public APIs and the admin's overrides are
/// reached directly.
public struct KeyValidator: Sendable {
    /// Whose key is checked: the tenant, and its admin-made egress rules that may open a base URL on the host's network.
    public struct Owner: Sendable {
        public var tenant: String
        public var rules: [EgressRule]

        public init(tenant: String, rules: [EgressRule]) {
            self.tenant = tenant
            self.rules = rules
        }
    }

    let httpClient: HTTPClient
    /// How a key's own base URL is reached.
    let destinations: TenantDestinationClient
    /// Base URLs that replace the providers' public ones (tests point them at a fake provider).
    let baseURLOverrides: [Provider: String]
    /// How long a provider may take to answer before the key's health is `unreachable`.
    let timeout: TimeAmount

    public init(
        httpClient: HTTPClient, destinations: TenantDestinationClient = TenantDestinationClient(), baseURLOverrides: [Provider: String],
        timeout: TimeAmount = .seconds(10)
    ) {
        self.httpClient = httpClient
        self.destinations = destinations
        self.baseURLOverrides = baseURLOverrides
        self.timeout = timeout
    }

    /// The base URL used for a provider: the key's own, else an override, else the provider's public API.
    public func baseURL(for provider: Provider, keyBaseURL: String?) -> String? {
        keyBaseURL ?? baseURLOverrides[provider] ?? provider.defaultBaseURL
    }

    /// Calls the provider. Never includes the key in the result.
    /// - Parameter owner: whose key it is; needed to reach a key's own base URL (without it, that is refused).
    public func validate(provider: Provider, key: SecretBytes, keyBaseURL: String?, owner: Owner? = nil) async -> KeyCheck {
        guard let base = baseURL(for: provider, keyBaseURL: keyBaseURL) else {
            return KeyCheck(health: .unreachable, status: nil, message: "no base URL for \(provider): give one with --base-url")
        }
        let keyText = key.withBytes { String(decoding: $0, as: UTF8.self) }
        let (url, headers) = provider.validationRequest(baseURL: base, key: keyText)
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if keyBaseURL != nil {
            switch await destinations.send(
                request, subject: "the key's base URL", tenant: owner?.tenant ?? "TENANT", allowing: owner?.rules ?? [], timeout: Duration(timeout))
            {
            case .answered(let status): return verdict(provider: provider, status: status, base: base)
            case .refused(let why): return KeyCheck(health: .unreachable, status: nil, message: "\(why); the key was not checked")
            case .failed:
                return KeyCheck(health: .unreachable, status: nil, message: "could not reach \(provider) at \(base): retry, or pass --no-validate")
            }
        }
        do {
            let response = try await httpClient.execute(request, timeout: timeout)
            let status = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 1 << 20)
            return verdict(provider: provider, status: status, base: base)
        } catch {
            return KeyCheck(
                health: .unreachable, status: nil,
                message: "could not reach \(provider) at \(base) (\(Self.reason(error))): retry, or pass --no-validate")
        }
    }

    /// What a provider's status says of a key.
    private func verdict(provider: Provider, status: Int, base: String) -> KeyCheck {
        switch status {
        case 200..<300: return KeyCheck(health: .ok, status: status, message: "\(provider) accepted the key")
        case 401, 403:
            return KeyCheck(
                health: .invalid, status: status,
                message: "\(provider) rejected the key (HTTP \(status)): check it was copied whole and is not revoked")
        case 402:
            return KeyCheck(
                health: .outOfCredit, status: status,
                message: "\(provider) accepted the key but its account is out of credit (HTTP 402): top it up with \(provider)")
        case 429:
            return KeyCheck(health: .rateLimited, status: status, message: "\(provider) accepted the key but is rate-limiting it (HTTP 429)")
        default:
            return KeyCheck(
                health: .unreachable, status: status,
                message: "\(provider) answered HTTP \(status) at \(base): the key could not be confirmed; retry, or pass --no-validate")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 120 ? String(text.prefix(120)) + "…" : text
    }
}
