public import AsyncHTTPClient
import Foundation
public import KeyholdCore
public import KeyholdVault
import NIOCore
import NIOHTTP1

/// Checks a key against its provider with the cheapest authenticated request (listing models).
public struct KeyValidator: Sendable {
    let httpClient: HTTPClient
    /// Base URLs that replace the providers' public ones (tests point them at a fake provider).
    let baseURLOverrides: [Provider: String]

    public init(httpClient: HTTPClient, baseURLOverrides: [Provider: String]) {
        self.httpClient = httpClient
        self.baseURLOverrides = baseURLOverrides
    }

    /// The base URL used for a provider: the key's own, else an override, else the provider's public API.
    public func baseURL(for provider: Provider, keyBaseURL: String?) -> String? {
        keyBaseURL ?? baseURLOverrides[provider] ?? provider.defaultBaseURL
    }

    /// Calls the provider. Never includes the key in the result.
    /// - Returns: whether the provider accepted the key, the HTTP status and a one-line reason.
    public func validate(provider: Provider, key: SecretBytes, keyBaseURL: String?) async -> (valid: Bool, status: Int?, message: String) {
        guard let base = baseURL(for: provider, keyBaseURL: keyBaseURL) else {
            return (false, nil, "no base URL for \(provider): give one with --base-url")
        }
        let keyText = key.withBytes { String(decoding: $0, as: UTF8.self) }
        let (url, headers) = provider.validationRequest(baseURL: base, key: keyText)
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        do {
            let response = try await httpClient.execute(request, timeout: .seconds(10))
            let status = Int(response.status.code)
            _ = try? await response.body.collect(upTo: 1 << 20)
            switch status {
            case 200..<300: return (true, status, "\(provider) accepted the key")
            case 401, 403: return (false, status, "\(provider) rejected the key (HTTP \(status)): check it was copied whole and is not revoked")
            case 429: return (true, status, "\(provider) accepted the key but is rate-limiting it (HTTP 429)")
            default:
                return (false, status, "\(provider) answered HTTP \(status) at \(base): the key could not be confirmed; retry, or pass --no-validate")
            }
        } catch {
            return (false, nil, "could not reach \(provider) at \(base) (\(Self.reason(error))): retry, or pass --no-validate")
        }
    }

    private static func reason(_ error: any Error) -> String {
        let text = "\(error)"
        return text.count > 120 ? String(text.prefix(120)) + "…" : text
    }
}
