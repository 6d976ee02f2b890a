import AsyncHTTPClient
import Foundation
import KeyholdTesting
import NIOCore
import NIOHTTP1

/// One answer of the admin API, as raw bytes.
struct AdminAnswer: Sendable {
    var status: Int
    var body: Data
    /// The `Allow` header (a 405's methods).
    var allow: String?

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body parsed as JSON (nil when it is empty or not JSON).
    var json: Any? { try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) }

    /// `error.code` and `error.message` of an error answer.
    var error: (code: String, message: String)? {
        guard let detail = (json as? [String: Any])?["error"] as? [String: Any], let code = detail["code"] as? String,
            let message = detail["message"] as? String
        else { return nil }
        return (code, message)
    }
}

/// Sends raw requests to the real daemon's admin API, over its Unix socket or loopback TCP.
struct AdminHTTP: Sendable {
    enum Endpoint: Sendable {
        case socket(String)
        case tcp(port: Int)
    }

    let endpoint: Endpoint
    /// Sent as `Authorization: Bearer TOKEN` when set.
    var token: String?

    init(_ endpoint: Endpoint, token: String? = nil) {
        self.endpoint = endpoint
        self.token = token
    }

    func send(_ method: String, _ path: String, body: String? = nil, headers: [(String, String)] = []) async throws -> AdminAnswer {
        let url: String
        switch endpoint {
        case .socket(let socketPath):
            guard let socketURL = URL(httpURLWithSocketPath: socketPath, uri: path) else { throw HarnessError("bad socket path \(socketPath)") }
            url = socketURL.absoluteString
        case .tcp(let port):
            url = "http://127.0.0.1:\(port)\(path)"
        }
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.body = .bytes(ByteBuffer(string: body))
            request.headers.add(name: "content-type", value: "application/json")
        }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let buffer = try await response.body.collect(upTo: 16 << 20)
        return AdminAnswer(status: Int(response.status.code), body: Data(buffer.readableBytesView), allow: response.headers.first(name: "allow"))
    }
}
