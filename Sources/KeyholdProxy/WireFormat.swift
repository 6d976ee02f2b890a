import Foundation
import NIOCore
import NIOHTTP1

/// A whole answer, written at once.
struct ProxyAnswer {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer

    /// A JSON answer.
    static func json(_ status: HTTPResponseStatus, _ body: [UInt8], headers extra: [(String, String)] = []) -> ProxyAnswer {
        var headers = HTTPHeaders([("content-type", "application/json")])
        headers.add(contentsOf: extra)
        return ProxyAnswer(status: status, headers: headers, body: ByteBuffer(bytes: body))
    }
}

/// Which provider API a request speaks: it decides how the agent authenticates and how errors look.
enum WireFormat: Sendable {
    case openAI
    case anthropic

    /// The proxy token, sent the way the provider's SDK sends a key.
    func token(in headers: HTTPHeaders) -> String? { Self.presentedKey(in: headers)?.token }

    /// The key a client presented and the header it came in: `x-api-key`, else `authorization: Bearer`.
    static func presentedKey(in headers: HTTPHeaders) -> (token: String, header: String)? {
        if let key = headers.first(name: "x-api-key"), !key.isEmpty { return (key, "x-api-key") }
        if let authorization = headers.first(name: "authorization"), authorization.hasPrefix("Bearer ") {
            return (String(authorization.dropFirst(7)), "authorization")
        }
        return nil
    }

    /// An error answer in the provider's own shape.
    func error(_ status: HTTPResponseStatus, type: String, message: String, retryAfter: Int? = nil) -> ProxyAnswer {
        .json(status, errorBody(type: type, message: message), headers: retryAfter.map { [("retry-after", String($0))] } ?? [])
    }

    /// The error body alone (also used as the final event of a cut stream).
    func errorBody(type: String, message: String) -> [UInt8] {
        let object: [String: Any]
        switch self {
        case .openAI:
            object = ["error": ["message": message, "type": type, "param": NSNull(), "code": type]]
        case .anthropic:
            object = ["type": "error", "error": ["type": type, "message": message]]
        }
        return Array((try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data())
    }

    /// The final event of a stream that was cut, in the provider's event format.
    func errorEvent(message: String) -> ByteBuffer {
        switch self {
        case .anthropic:
            ByteBuffer(bytes: Array("event: error\ndata: ".utf8) + errorBody(type: "api_error", message: message) + Array("\n\n".utf8))
        case .openAI:
            ByteBuffer(bytes: Array("data: ".utf8) + errorBody(type: upstreamError, message: message) + Array("\n\n".utf8))
        }
    }

    /// The error types each provider uses for the same situations.
    var authenticationError: String { self == .openAI ? "invalid_api_key" : "authentication_error" }
    var rateLimitError: String { self == .openAI ? "rate_limit_exceeded" : "rate_limit_error" }
    var invalidRequestError: String { "invalid_request_error" }
    var permissionError: String { self == .openAI ? "model_not_allowed" : "permission_error" }
    /// A refusal that is not about the model (a brokered key's upstream the host's admin has not allowed).
    var forbiddenError: String { self == .openAI ? "permission_denied" : "permission_error" }
    var upstreamError: String { self == .openAI ? "upstream_error" : "api_error" }
    var notFoundError: String { self == .openAI ? "not_found" : "not_found_error" }
    var timeoutError: String { self == .openAI ? "timeout" : "timeout_error" }
}
