public import AsyncHTTPClient
import Foundation
public import KeyholdCore
public import KeyholdVault
import NIOCore
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
public struct KeyValidator: Sendable {
    let httpClient: HTTPClient
    /// Base URLs that replace the providers' public ones (tests point them at a fake provider).
    let baseURLOverrides: [Provider: String]
    /// How long a provider may take to answer before the key's health is `unreachable`.
    let timeout: TimeAmount

    public init(httpClient: HTTPClient, baseURLOverrides: [Provider: String], timeout: TimeAmount = .seconds(10)) {
        self.httpClient = httpClient
        self.baseURLOverrides = baseURLOverrides
        self.timeout = timeout
    }

    /// The base URL used for a provider: the key's own, else an override, else the provider's public API.
    public func baseURL(for provider: Provider, keyBaseURL: String?) -> String? {
        keyBaseURL ?? baseURLOverrides[provider] ?? provider.defaultBaseURL
    }

    /// Calls the provider. Never includes the key in the result.
    public func validate(provider: Provider, key: SecretBytes, keyBaseURL: String?) async -> KeyCheck {
        guard let base = baseURL(for: provider, keyBaseURL: keyBaseURL) else {
            return KeyCheck(health: .unreachable, status: nil, message: "no base URL for \(provider): give one with --base-url")
        }
        let keyText = key.withBytes { String(decoding: $0, as: UTF8.self) }
        let (url, headers) = provider.validationRequest(baseURL: base, key: keyText)
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        do {
            let response = try await httpClient.execute(request, timeout: timeout)
            let status = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 1 << 20)
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
        } catch {
            return KeyCheck(
                health: .unreachable, status: nil,
                message: "could not reach \(provider) at \(base) (\(Self.reason(error))): retry, or pass --no-validate")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 120 ? String(text.prefix(120)) + "…" : text
    }
}
