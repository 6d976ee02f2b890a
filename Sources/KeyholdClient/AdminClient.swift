import AsyncHTTPClient
public import Foundation
import KeyholdCore
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// A client of the admin API over its Unix socket (the CLI and the demo use it).
public struct AdminClient: Sendable {
    public let socketPath: String
    private let httpClient: HTTPClient

    public init(socketPath: String, httpClient: HTTPClient = .shared) {
        self.socketPath = socketPath
        self.httpClient = httpClient
    }

    /// Sends a request and decodes the answer; an error answer becomes the `KeyholdError` the daemon described.
    public func call<Response: Decodable>(
        _ method: String, _ path: String, body: (some Encodable)? = Optional<Int>.none, as type: Response.Type
    ) async throws -> Response {
        let data = try await send(method, path, body: body)
        do {
            return try AdminJSON.decoder().decode(Response.self, from: data)
        } catch {
            throw KeyholdError.failed("the daemon's answer to \(method) \(path) could not be read: \(error)")
        }
    }

    /// Sends a request whose answer has no body.
    public func send(_ method: String, _ path: String, body: (some Encodable)? = Optional<Int>.none) async throws -> Data {
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: path) else {
            throw KeyholdError.invalidInput("bad socket path \(socketPath)")
        }
        // A missing or dead socket fails at once (the HTTP client would keep retrying until its deadline).
        guard UnixSocketProbe.isListening(socketPath) else {
            throw KeyholdError.unavailable(
                "cannot reach the keyhold daemon at \(socketPath): is `keyhold serve` running? (set --socket or KEYHOLD_SOCKET)"
            )
        }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = HTTPMethod(rawValue: method)
        if let body {
            request.body = .bytes(ByteBuffer(data: try AdminJSON.encoder().encode(body)))
            request.headers.add(name: "content-type", value: "application/json")
        }
        let response: HTTPClientResponse
        do {
            response = try await httpClient.execute(request, timeout: .seconds(120))
        } catch {
            throw KeyholdError.unavailable(
                "cannot reach the keyhold daemon at \(socketPath) (\(error)): is `keyhold serve` running? (set --socket or KEYHOLD_SOCKET)"
            )
        }
        let buffer = try await response.body.collect(upTo: 64 << 20)
        let data = Data(buffer: buffer)
        guard (200..<300).contains(Int(response.status.code)) else {
            if let error = try? AdminJSON.decoder().decode(AdminAPI.ErrorBody.self, from: data) {
                throw KeyholdError(KeyholdError.Code(name: error.error.code) ?? .failed, error.error.message)
            }
            throw KeyholdError.failed("the daemon answered HTTP \(response.status.code) to \(method) \(path)")
        }
        return data
    }
}

extension String {
    /// Percent-encodes a path segment (tenant and provider names are already safe; this guards the rest).
    public var pathSegment: String { addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? self }
}
